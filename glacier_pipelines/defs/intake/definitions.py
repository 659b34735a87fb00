import dagster as dg

from glacier_pipelines.defs.intake.sensors import amqp_bridge_sensor, request_intake_sensor

defs = dg.Definitions(sensors=[request_intake_sensor, amqp_bridge_sensor])
