"""Migrations under concurrency: two rabtad processes on one empty database at once."""
import rbtest


class MigrationsTest(rbtest.TestCase):
    def test_two_processes_on_one_empty_database_apply_each_migration_once(self):
        pg = self.pg()
        a = self.rabtad(pg=pg, name="a")
        b = self.rabtad(pg=pg, name="b")
        a.start(wait=False)
        b.start(wait=False)
        a.wait_healthy()
        b.wait_healthy()
        self.assertNotEqual(a.port, b.port)

        dup = pg.query("SELECT owner, version, count(*) FROM rabta_migrations"
                       " GROUP BY owner, version HAVING count(*) <> 1")
        self.assertEqual(dup, [], "versions recorded more than once: %r" % dup)
        applied = sorted(int(r[0]) for r in pg.query("SELECT version FROM rabta_migrations"
                                                     " WHERE owner = 'core'"))
        want = rbtest.migration_versions()
        self.assertEqual(applied, want, "rabta_migrations does not hold each migration once")
        for rd in (a, b):
            r = rd.get("/api/v1/meta")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json.get("schema_version"), want[-1] if want else 0, r)


if __name__ == "__main__":
    rbtest.main()
