"""Callbacks that run in the Airflow control plane on behalf of every package's DAGs."""
