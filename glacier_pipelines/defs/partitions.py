import dagster as dg

# One partition per tenant; batches and files live in the catalog, not in partition keys.
tenants = dg.DynamicPartitionsDefinition(name="tenants")
