-- A million instances for measuring /reports/ (docs/reports.md). Run on an empty, migrated
-- database after bench.dataset.install_workflows() and publishing 'licence' (definition 5);
-- groups plan-reviewers = 4, backup-reviewers = 5 there. psql -f docs/reports-bigdata.sql
\timing on
SET synchronous_commit = off;
CREATE TEMP TABLE g AS
SELECT n,
       CASE WHEN n % 2 = 0 THEN 1 ELSE 5 END AS def,
       now() - interval '5 days' - (n % 730) * interval '1 day' - (n * 7919 % 86400) * interval '1 second' AS created,
       (600 + (n * 7907 % 345600)) AS dur,
       (n % 20 = 0) AS running,
       CASE WHEN n % 7 = 0 THEN 'rejected' ELSE 'completed' END AS fin
FROM generate_series(1::bigint, 1000000::bigint) AS n;
INSERT INTO workflows_app_workflowinstance (id, uuid, case_number, definition_id, status, current_step,
  payload, context, request_digest, started_by, created_at, updated_at, ended_at, deadline_at, legal_hold, outcome)
SELECT n, md5(n::text)::uuid, 'BIG-' || n, def,
       CASE WHEN running THEN 'running' ELSE fin END,
       CASE WHEN running THEN 'approve' ELSE '' END,
       '{"applicant": "Ada"}'::jsonb, '{}'::jsonb, '', 'bench', created, created,
       CASE WHEN running THEN NULL ELSE created + dur * interval '1 second' END,
       CASE WHEN def = 5 THEN created + interval '3 days' END, false,
       CASE WHEN running THEN NULL ELSE jsonb_build_object('result', fin, 'step', 'approve', 'reasons', '[]'::jsonb) END
FROM g;
INSERT INTO workflows_app_steprun (id, instance_id, step_id, lane, state, attempts, result, output, error,
  escalation_level, escalation_exhausted, reminders_sent, completed_by, reason, note, created_at, started_at, ended_at)
SELECT gen_random_uuid(), n, 'validate', '', 'succeeded', 1, 'ok', '{}'::jsonb, '', 0, false, 0, '', '', '',
       created, created, created + interval '1 second' FROM g;
INSERT INTO workflows_app_steprun (id, instance_id, step_id, lane, state, attempts, result, error, wake_at,
  due_at, assignee_group_id, escalation_level, escalation_exhausted, reminders_sent, completed_by, reason, note,
  created_at, started_at, ended_at)
SELECT gen_random_uuid(), n, 'approve', '',
       CASE WHEN running THEN 'waiting' ELSE 'succeeded' END, 0,
       CASE WHEN running THEN '' WHEN fin = 'rejected' THEN 'rejected' ELSE 'approved' END, '',
       CASE WHEN running THEN created + interval '1 minute' + interval '48 hours' END,
       created + interval '1 minute' + CASE WHEN dur > 172800 AND NOT running THEN interval '96 hours' ELSE interval '48 hours' END,
       CASE WHEN dur > 172800 AND NOT running THEN 5 ELSE 4 END,
       CASE WHEN dur > 172800 AND NOT running THEN 1 ELSE 0 END, false, 0,
       CASE WHEN running THEN '' ELSE 'user:reviewer' || (n % 40) END, '', '',
       created + interval '1 minute', created + interval '1 minute',
       CASE WHEN running THEN NULL ELSE created + dur * interval '1 second' - interval '30 seconds' END
FROM g;
INSERT INTO workflows_app_steprun (id, instance_id, step_id, lane, state, attempts, result, output, error,
  escalation_level, escalation_exhausted, reminders_sent, completed_by, reason, note, created_at, started_at, ended_at)
SELECT gen_random_uuid(), n, 'notify', '', 'succeeded', 1, 'ok', '{}'::jsonb, '', 0, false, 0, '', '', '',
       created + dur * interval '1 second' - interval '30 seconds', created + dur * interval '1 second' - interval '30 seconds',
       created + dur * interval '1 second' FROM g WHERE NOT running;
SELECT setval(pg_get_serial_sequence('workflows_app_workflowinstance', 'id'), 1000000);
ANALYZE;
SELECT status, count(*) FROM workflows_app_workflowinstance GROUP BY 1;
SELECT count(*) FROM workflows_app_steprun;
