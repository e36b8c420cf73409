"""Deployment manifests and IAM documents; the files derived from the packages are generated here."""
