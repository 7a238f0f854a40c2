-- MLflow's backend store beside the app's database (compose's scale-out profile).
-- Run by the postgres image on its first start only (an empty data volume).
CREATE DATABASE mlflow;
