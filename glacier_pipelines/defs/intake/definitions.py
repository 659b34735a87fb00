import dagster as dg

from glacier_pipelines.defs.intake.sensors import amqp_bridge_sensor, request_intake_sensor
from glacier_pipelines.defs.intake.worker_sensors import worker_requests_sensor

defs = dg.Definitions(sensors=[request_intake_sensor, amqp_bridge_sensor, worker_requests_sensor])
