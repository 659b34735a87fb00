"""Run the Dagster jobs on this machine's instance, from plain arguments: one pass, a restore, a submission.

Shared by the console script (cli/, which only parses and prints) and the demo, so neither imports the other.
"""
