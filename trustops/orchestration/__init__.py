"""Running trustops pipelines on an external orchestrator (Apache Airflow).

:mod:`trustops.orchestration.airflow_dag` is the DAG file ZenML ships to Airflow: it runs in
Airflow's own virtualenv and imports neither trustops nor ZenML.
:mod:`trustops.orchestration.airflow` is the trustops side: the stack, the per-run settings, and
the DAG files' life cycle.
"""
