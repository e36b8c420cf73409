"""IAM policy documents of the DAG store (generated: see generate.py)."""
