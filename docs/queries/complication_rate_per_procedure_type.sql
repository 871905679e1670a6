-- Complication rate per procedure type: the share of outcomes that were not successful.
SELECT p.procedure_category,
       p.procedure_type,
       count(*) AS outcomes,
       round(avg((o.success_status <> 'successful')::int), 3) AS complication_rate,
       round(avg(o.blood_loss_ml)) AS mean_blood_loss_ml,
       round(avg(o.hospital_stay_days), 1) AS mean_stay_days,
       round(avg(o.readmission_30day::int), 3) AS readmission_rate
  FROM procedure_outcomes o
  JOIN surgical_procedures p USING (procedure_id)
 GROUP BY p.procedure_category, p.procedure_type
 ORDER BY complication_rate DESC, p.procedure_type;
