"""The pipeline's steps as plain Python over core and catalog; Dagster assets call these."""
