"""The retrain job, its daily schedule and the landing sensor."""
