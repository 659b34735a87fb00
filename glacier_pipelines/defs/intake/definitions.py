import dagster as dg

from glacier_pipelines.defs.intake.sensors import request_intake_sensor

defs = dg.Definitions(sensors=[request_intake_sensor])
