"""Manifests of the Airflow control plane; the packages' ServiceAccounts are generated (service_accounts.py)."""
