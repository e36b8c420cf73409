"""The Airflow 3 control plane run locally: settings, a process runner and a small REST client."""
