# generated from packages/geocoding/dags/geocoding_daily.yaml by //packages/geocoding:dag.geocoding_daily; do not edit
IMAGE = "@IMAGE@"
