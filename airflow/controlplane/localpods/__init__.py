"""The local pod runtime: each KubernetesPodOperator task's exact pod, run with podman.

See docs/airflow/local-pod-runtime.md. ``podspec`` maps the pod to podman flags, ``podrun`` runs
it, ``runtime`` sets up podman and the cluster's objects, ``operator`` is the Airflow cluster policy.
"""
