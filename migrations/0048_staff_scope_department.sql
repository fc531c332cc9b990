-- 0048_staff_scope_department: officers and supervisors always have a department.
-- An officer or supervisor sees their own department's cases; without a department such an
-- account would be scoped to nothing (or, through a missed check, to everything). The schema
-- forbids an enabled one: any that exists is disabled here (an administrator gives it a
-- department, then enables it again), and enabling one without a department is refused.
UPDATE staff SET disabled_at = now()
WHERE role IN ('officer', 'supervisor') AND (department_id IS NULL OR department_id = '')
  AND disabled_at IS NULL;

ALTER TABLE staff ADD CONSTRAINT staff_scoped_role_has_department
    CHECK (role NOT IN ('officer', 'supervisor') OR disabled_at IS NOT NULL
           OR (department_id IS NOT NULL AND department_id <> ''));
