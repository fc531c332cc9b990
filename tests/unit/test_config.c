/* core/config/config.c: the sample province in config/ loads and is complete; malformed
 * configurations are refused, each with the exact file:line:column and the key.
 *
 * Each malformed case starts from a small valid configuration written to a temporary
 * directory (rabta.yaml, departments/bureau.yaml, services/general.yaml, districts.yaml) and
 * replaces one file, so the line and column asserted are visible in the test itself. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "config/config.h"

/* ---- the sample province ------------------------------------------------------------------ */

static int has_arabic_letter(const char *s)
{
    /* Arabic-script letters are encoded as 0xD8-0xDB lead bytes (U+0600-U+06FF). */
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p >= 0xD8 && *p <= 0xDB)
            return 1;
    return 0;
}

static void sample_config_loads_with_every_department_service_and_district(void **state)
{
    (void)state;
    struct rb_errors e;
    rb_errors_init(&e);
    struct rb_config *cfg = rb_config_load(RB_SOURCE_DIR "/config/rabta.yaml", &e);
    for (size_t i = 0; i < e.n; i++)
        print_error("%s\n", e.msgs[i]);
    assert_non_null(cfg);
    assert_int_equal(e.n, 0);

    assert_true(cfg->n_departments >= 8);
    assert_true(cfg->n_services >= 20);
    assert_int_equal(cfg->n_districts, 36);
    static const char *const deps[] = {"bureau", "revenue", "police", "health", "excise",
                                       "local_government", "transport", "home",
                                       "school_education"};
    for (size_t i = 0; i < sizeof(deps) / sizeof(*deps); i++)
        if (!rb_config_department(cfg, deps[i]))
            fail_msg("department \"%s\" is missing from the sample", deps[i]);
    for (size_t i = 0; i < cfg->n_departments; i++) {
        const struct rb_department *d = &cfg->departments[i];
        assert_true(d->name.en[0] != '\0');
        if (!has_arabic_letter(d->name.ur))
            fail_msg("department %s has no Urdu name", d->id);
        assert_non_null(rb_config_plugin(cfg, d->plugin));
        assert_non_null(strstr(d->file, "/config/departments/"));
        assert_int_equal(d->line > 0, 1);
    }
    size_t with_feedback = 0;
    for (size_t i = 0; i < cfg->n_services; i++) {
        const struct rb_service *s = &cfg->services[i];
        if (!rb_config_department(cfg, s->department))
            fail_msg("service %s names missing department %s", s->id, s->department);
        if (!has_arabic_letter(s->name.ur))
            fail_msg("service %s has no Urdu name", s->id);
        with_feedback += s->feedback ? 1 : 0;
    }
    assert_true(with_feedback >= 15);
    static const char *const svcs[] = {
        "driving_licence_issue", "driving_licence_renewal", "domicile_certificate", "fard",
        "mutation", "property_registration", "fir_registration", "vehicle_registration",
        "vehicle_transfer", "birth_certificate", "death_certificate", "marriage_certificate",
        "character_certificate", "arms_licence", "token_tax", "treatment_dhq", "treatment_thq",
        "school_admission", "building_plan_approval"};
    for (size_t i = 0; i < sizeof(svcs) / sizeof(*svcs); i++)
        if (!rb_config_service(cfg, svcs[i]))
            fail_msg("service \"%s\" is missing from the sample", svcs[i]);
    assert_true(rb_config_service(cfg, "fir_registration")->feedback);
    assert_string_equal(rb_config_service(cfg, "fir_registration")->department, "police");

    static const char *const districts[] = {
        "lahore", "faisalabad", "rawalpindi", "multan", "gujranwala", "sargodha", "bahawalpur",
        "sialkot", "sheikhupura", "jhang", "rahim_yar_khan", "kasur", "okara", "sahiwal",
        "dera_ghazi_khan", "muzaffargarh", "layyah", "rajanpur", "bahawalnagar", "lodhran",
        "vehari", "khanewal", "pakpattan", "toba_tek_singh", "chiniot", "nankana_sahib",
        "narowal", "gujrat", "mandi_bahauddin", "hafizabad", "attock", "jhelum", "chakwal",
        "mianwali", "khushab", "bhakkar"};
    assert_int_equal(sizeof(districts) / sizeof(*districts), 36);
    for (size_t i = 0; i < 36; i++) {
        const struct rb_district *d = rb_config_district(cfg, districts[i]);
        if (!d)
            fail_msg("district \"%s\" is missing from the sample", districts[i]);
        if (!has_arabic_letter(d->name.ur))
            fail_msg("district %s has no Urdu name", d->id);
        assert_non_null(d->division);
    }
    assert_string_equal(rb_config_district(cfg, "lahore")->name.ur, "لاہور");
    assert_string_equal(rb_config_district(cfg, "okara")->division, "sahiwal");

    /* Plugins: staff_inbox and webhook for departments; app, open311, web, sms_kannel and
     * email_smtp for channels. */
    assert_int_equal(cfg->n_plugins, 7);
    assert_non_null(rb_config_plugin(cfg, "sms_kannel"));
    assert_non_null(rb_config_plugin(cfg, "email_smtp"));
    assert_non_null(rb_config_plugin(cfg, "web"));
    assert_non_null(rb_config_plugin(cfg, "open311"));
    assert_non_null(rb_config_plugin(cfg, "staff_inbox"));
    assert_non_null(rb_config_plugin(cfg, "webhook"));
    assert_non_null(rb_config_plugin(cfg, "app"));
    assert_true(rb_config_plugin(cfg, "app")->enabled);
    assert_null(rb_config_plugin(cfg, "app")->path);
    const struct rb_department *police = rb_config_department(cfg, "police");
    /* The sample runs without secrets: every department on staff_inbox; police.yaml shows the
     * webhook settings in a comment (docs/webhook.md). */
    assert_string_equal(police->plugin, "staff_inbox");
    assert_null(police->plugin_config);
    assert_string_equal(rb_config_department(cfg, "bureau")->plugin, "staff_inbox");

    /* Server and paths. */
    assert_string_equal(cfg->server.addr, "127.0.0.1");
    assert_int_equal(cfg->server.port, 8080);
    assert_int_equal(cfg->server.max_body, 1024 * 1024);
    assert_true(cfg->server.shutdown_grace == 10);
    assert_true(cfg->server.request_timeout == 30);
    assert_null(cfg->database.url); /* "" means the embedded PostgreSQL */
    assert_int_equal(cfg->database.pool_size, 4);
    assert_string_equal(cfg->base_dir, RB_SOURCE_DIR "/config");
    assert_string_equal(cfg->state_dir, RB_SOURCE_DIR "/config/../var");
    assert_string_equal(cfg->lua_dir, RB_SOURCE_DIR "/config/../lua");
    assert_string_equal(cfg->migrations_dir, RB_SOURCE_DIR "/config/../migrations");
    assert_null(rb_config_department(cfg, "nope"));
    assert_null(rb_config_service(cfg, NULL));
    rb_config_free(cfg);
    rb_errors_free(&e);
}

/* ---- the small valid configuration -------------------------------------------------------- */

struct fx {
    char dir[64];
};

static const char base_rabta[] = "server:\n"
                                 "  listen: \"127.0.0.1:8080\"\n"
                                 "database:\n"
                                 "  pool_size: 4\n"
                                 "plugins:\n"
                                 "  - name: staff_inbox\n"
                                 "  - name: webhook\n"
                                 "districts: districts.yaml\n"
                                 "departments: departments/*.yaml\n"
                                 "services: services/*.yaml\n";

static const char base_bureau[] = "id: bureau\n"
                                  "name: {en: \"Citizen Relations Bureau\", ur: \"شہری رابطہ بیورو\"}\n"
                                  "plugin: staff_inbox\n";

static const char base_general[] = "id: general\n"
                                   "name: {en: \"General complaint\", ur: \"عمومی شکایت\"}\n"
                                   "department: bureau\n";

static const char base_districts[] = "- id: lahore\n"
                                     "  name: {en: Lahore, ur: \"لاہور\"}\n"
                                     "  division: lahore\n";

static void put_n(const struct fx *f, const char *name, const char *text, size_t len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, len, fp), len);
    fclose(fp);
}

static void put(const struct fx *f, const char *name, const char *text)
{
    put_n(f, name, text, strlen(text));
}

/* rabta.yaml replaced by text; "plugins: [{name: staff_inbox}]" is appended when text lists
 * none, so that the fixture's department stays valid and only the error under test remains. */
static void put_rabta(const struct fx *f, const char *text)
{
    if (strstr(text, "plugins:") || !text[0]) {
        put(f, "rabta.yaml", text);
        return;
    }
    char buf[2048];
    snprintf(buf, sizeof(buf), "%splugins: [{name: staff_inbox}]\n", text);
    put(f, "rabta.yaml", buf);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/rb_test_config_XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/departments", f->dir);
    mkdir(sub, 0755);
    snprintf(sub, sizeof(sub), "%s/services", f->dir);
    mkdir(sub, 0755);
    put(f, "rabta.yaml", base_rabta);
    put(f, "departments/bureau.yaml", base_bureau);
    put(f, "services/general.yaml", base_general);
    put(f, "districts.yaml", base_districts);
    *state = f;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static struct rb_config *load(const struct fx *f, struct rb_errors *e)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/rabta.yaml", f->dir);
    rb_errors_init(e);
    return rb_config_load(path, e);
}

/* The configuration must be refused with exactly n errors; error i must start with
 * "<dir>/<file>:<line>:<col>: " and contain needle. Arguments: file, line, col, needle for
 * each error in order. */
static void expect_errors(const struct fx *f, size_t n, ...)
{
    struct rb_errors e;
    struct rb_config *cfg = load(f, &e);
    if (cfg || e.n != n) {
        for (size_t i = 0; i < e.n; i++)
            print_error("  %s\n", e.msgs[i]);
        fail_msg("expected the configuration refused with %zu error(s), got %s with %zu", n,
                 cfg ? "a config" : "NULL", e.n);
    }
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        const char *file = va_arg(ap, const char *);
        int line = va_arg(ap, int), col = va_arg(ap, int);
        const char *needle = va_arg(ap, const char *);
        char prefix[256];
        snprintf(prefix, sizeof(prefix), "%s/%s:%d:%d: ", f->dir, file, line, col);
        if (strncmp(e.msgs[i], prefix, strlen(prefix)) != 0)
            fail_msg("error %zu \"%s\" does not start with \"%s\"", i, e.msgs[i], prefix);
        if (!strstr(e.msgs[i], needle))
            fail_msg("error %zu \"%s\" lacks \"%s\"", i, e.msgs[i], needle);
    }
    va_end(ap);
    rb_errors_free(&e);
}

#define FX struct fx *f = *state

static void base_fixture_is_valid(void **state)
{
    FX;
    struct rb_errors e;
    struct rb_config *cfg = load(f, &e);
    for (size_t i = 0; i < e.n; i++)
        print_error("%s\n", e.msgs[i]);
    assert_non_null(cfg);
    assert_int_equal(cfg->n_departments, 1);
    assert_int_equal(cfg->n_services, 1);
    assert_int_equal(cfg->n_districts, 1);
    assert_int_equal(cfg->n_plugins, 2);
    assert_string_equal(cfg->base_dir, f->dir);
    /* Defaults for what the file leaves out. */
    assert_int_equal(cfg->server.max_body, 1024 * 1024);
    assert_true(cfg->server.shutdown_grace == 10);
    assert_true(cfg->server.request_timeout == 30);
    assert_true(cfg->database.connect_timeout == 5);
    assert_int_equal(cfg->database.max_queue, 10000);
    assert_null(cfg->database.pg_bindir);
    assert_null(cfg->plugin_dir);
    assert_int_equal(cfg->log_level, RB_LOG_INFO);
    assert_false(cfg->services[0].feedback);
    assert_null(cfg->departments[0].plugin_config);
    assert_null(cfg->departments[0].duty_phone);
    rb_config_free(cfg);
    rb_errors_free(&e);
}

static void every_setting_is_read_and_paths_resolve_against_the_file(void **state)
{
    FX;
    put(f, "rabta.yaml",
        "server: {listen: \"[::1]:0\", max_body: 64KiB, shutdown_grace: 2s, request_timeout: 1m}\n"
        "state_dir: state\n"
        "database:\n"
        "  url: \"postgresql:///rabta\"\n"
        "  pool_size: 8\n"
        "  connect_timeout: 250ms\n"
        "  max_queue: 50\n"
        "  pg_bindir: /usr/lib/postgresql/15/bin\n"
        "log: {level: debug}\n"
        "lua_dir: /opt/lua\n"
        "migrations_dir: ../m\n"
        "plugin_dir: plugins\n"
        "plugins:\n"
        "  - {name: staff_inbox, config: {notify_duty_officer: true}}\n"
        "  - {name: webhook, path: lib/webhook.so, enabled: no}\n"
        "districts: districts.yaml\n"
        "departments: [departments/*.yaml]\n"
        "services: services/general.yaml\n");
    struct rb_errors e;
    struct rb_config *cfg = load(f, &e);
    for (size_t i = 0; i < e.n; i++)
        print_error("%s\n", e.msgs[i]);
    assert_non_null(cfg);
    char want[160];
    assert_string_equal(cfg->server.addr, "::1");
    assert_int_equal(cfg->server.port, 0);
    assert_int_equal(cfg->server.max_body, 65536);
    assert_true(cfg->server.shutdown_grace == 2);
    assert_true(cfg->server.request_timeout == 60);
    snprintf(want, sizeof(want), "%s/state", f->dir);
    assert_string_equal(cfg->state_dir, want);
    assert_string_equal(cfg->database.url, "postgresql:///rabta");
    assert_int_equal(cfg->database.pool_size, 8);
    assert_true(cfg->database.connect_timeout == 0.25);
    assert_int_equal(cfg->database.max_queue, 50);
    assert_string_equal(cfg->database.pg_bindir, "/usr/lib/postgresql/15/bin");
    assert_int_equal(cfg->log_level, RB_LOG_DEBUG);
    assert_string_equal(cfg->lua_dir, "/opt/lua");
    snprintf(want, sizeof(want), "%s/../m", f->dir);
    assert_string_equal(cfg->migrations_dir, want);
    snprintf(want, sizeof(want), "%s/plugins", f->dir);
    assert_string_equal(cfg->plugin_dir, want);
    const struct rb_plugin_conf *wh = rb_config_plugin(cfg, "webhook");
    snprintf(want, sizeof(want), "%s/lib/webhook.so", f->dir);
    assert_string_equal(wh->path, want);
    assert_false(wh->enabled);
    assert_int_equal(wh->line, 15);
    assert_int_equal(wh->col, 5);
    const struct rb_plugin_conf *inbox = rb_config_plugin(cfg, "staff_inbox");
    assert_true(inbox->enabled);
    assert_string_equal(rb_node_get(inbox->config, "notify_duty_officer")->scalar, "true");
    rb_config_free(cfg);
    rb_errors_free(&e);
}

static void relative_config_path_names_included_files_relatively(void **state)
{
    FX;
    put(f, "services/general.yaml", "id: general\nname: {en: G, ur: \"عمومی\"}\ndepartment: x\n");
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir("/tmp"), 0);
    struct rb_errors e;
    rb_errors_init(&e);
    char rel[128];
    snprintf(rel, sizeof(rel), "%s/rabta.yaml", f->dir + 5); /* "rb_test_config_XXXXXX/..." */
    struct rb_config *cfg = rb_config_load(rel, &e);
    assert_int_equal(chdir(cwd), 0);
    assert_null(cfg);
    assert_int_equal(e.n, 1);
    char want[160];
    snprintf(want, sizeof(want), "%s/services/general.yaml:3:13: key \"department\"", f->dir + 5);
    if (strncmp(e.msgs[0], want, strlen(want)) != 0)
        fail_msg("\"%s\" does not start with \"%s\"", e.msgs[0], want);
    rb_errors_free(&e);
}

static void json_shaped_config_loads(void **state)
{
    FX;
    /* The shape the integration tests write: JSON is YAML, with every key quoted. */
    char text[2048];
    snprintf(text, sizeof(text),
             "{\n"
             "  \"server\": {\"listen\": \"127.0.0.1:18080\", \"max_body\": \"1MiB\",\n"
             "             \"shutdown_grace\": \"5s\"},\n"
             "  \"state_dir\": \"%s/state\",\n"
             "  \"database\": {\"pool_size\": 4, \"url\": \"postgresql://127.0.0.1:5432/x\"},\n"
             "  \"log\": {\"level\": \"info\"},\n"
             "  \"districts\": \"%s/districts.yaml\",\n"
             "  \"departments\": \"%s/departments/*.yaml\",\n"
             "  \"services\": \"%s/services/*.yaml\",\n"
             "  \"plugins\": [{\"name\": \"staff_inbox\"}, {\"name\": \"webhook\"}, {\"name\": \"app\"}]\n"
             "}\n",
             f->dir, f->dir, f->dir, f->dir);
    put(f, "rabta.yaml", text);
    struct rb_errors e;
    struct rb_config *cfg = load(f, &e);
    for (size_t i = 0; i < e.n; i++)
        print_error("%s\n", e.msgs[i]);
    assert_non_null(cfg);
    assert_int_equal(cfg->server.port, 18080);
    assert_true(cfg->server.shutdown_grace == 5);
    assert_int_equal(cfg->n_plugins, 3);
    assert_string_equal(cfg->database.url, "postgresql://127.0.0.1:5432/x");
    rb_config_free(cfg);
    rb_errors_free(&e);
}

/* ---- malformed configurations ------------------------------------------------------------- */

static void unknown_key(void **state)
{
    FX;
    put_rabta(f, "server:\n  listen: \"127.0.0.1:8080\"\n  pool_size: 4\n"
                         "departments: departments/*.yaml\n");
    expect_errors(f, 1, "rabta.yaml", 3, 3,
                  "unknown key \"pool_size\" in server; allowed keys: listen, max_body, "
                  "shutdown_grace, request_timeout");
}

static void server_limits_are_read_and_routes_merge_with_the_defaults(void **state)
{
    FX;
    put_rabta(f, "server:\n  max_header_size: 8KiB\n  header_timeout: 3s\n"
                 "  trusted_proxies: [\"10.0.0.0/8\", \"fd00::/8\"]\n"
                 "  routes:\n    \"GET /api/v1/cases/:tracking\": {rate: 2/s}\n"
                 "    \"POST /open311/v2/requests.json\": {rate: 100/h, burst: 3}\n"
                 "departments: departments/*.yaml\n");
    struct rb_errors e;
    struct rb_config *cfg = load(f, &e);
    assert_non_null(cfg);
    const struct rb_server_limits *sl = &cfg->server.limits;
    assert_int_equal(sl->max_header_size, 8192);
    assert_true(sl->header_timeout == 3 && sl->body_timeout == 60);
    assert_int_equal(sl->n_trusted_proxies, 2);
    assert_true(rb_cidr_match(sl->trusted_proxies, 2, "10.3.4.5"));
    int seen = 0;
    for (size_t i = 0; i < sl->n_routes; i++) {
        const struct rb_route_conf *r = &sl->routes[i];
        if (strcmp(r->route, "GET /api/v1/cases/:tracking") == 0) /* rate replaced, burst kept */
            seen += r->per_second == 2 && r->burst == 20;
        if (strcmp(r->route, "POST /open311/v2/requests.json") == 0) /* added */
            seen += r->per_second > 0.0277 && r->per_second < 0.0278 && r->burst == 3;
        if (strcmp(r->route, "POST /api/v1/staff/login") == 0) /* a default, untouched */
            seen += r->max_body == 4096;
    }
    assert_int_equal(seen, 3);
    rb_config_free(cfg);
    rb_errors_free(&e);
}

static void server_limits_refuse_bad_rates_blocks_and_routes(void **state)
{
    FX;
    put_rabta(f, "server:\n  trusted_proxies: [\"10.0.0.0/99\"]\n"
                 "  routes:\n    \"FETCH /x\": {rate: 1/s}\n"
                 "    \"GET /y\": {rate: 10/fortnight}\n"
                 "departments: departments/*.yaml\n");
    expect_errors(f, 3, "rabta.yaml", 2, 21, "\"10.0.0.0/99\" is not an address or block",
                  "rabta.yaml", 4, 5, "\"FETCH /x\" is not a method and route",
                  "rabta.yaml", 5, 22, "key \"rate\": expected requests per time");
}

static void wrong_type(void **state)
{
    FX;
    put_rabta(f, "database:\n  pool_size: four\ndepartments: departments/*.yaml\n");
    expect_errors(f, 1, "rabta.yaml", 2, 14,
                  "key \"pool_size\": expected a whole number, got \"four\"");
}

static void missing_required_key(void **state)
{
    FX;
    put(f, "departments/bureau.yaml",
        "id: bureau\nname: {en: \"Bureau\", ur: \"بیورو\"}\nemail: a@b.pk\n");
    /* The service that names it then names a missing department: reported too. */
    expect_errors(f, 2, "departments/bureau.yaml", 1, 1,
                  "missing required key \"plugin\" in a department", "services/general.yaml", 3,
                  13, "no department \"bureau\" (known: none)");
}

static void missing_urdu_name(void **state)
{
    FX;
    put(f, "services/general.yaml", "id: general\nname:\n  en: General\ndepartment: bureau\n");
    expect_errors(f, 1, "services/general.yaml", 3, 3, "missing required key \"ur\" in name");
}

static void urdu_name_not_in_urdu(void **state)
{
    FX;
    put(f, "services/general.yaml",
        "id: general\nname:\n  en: General\n  ur: General\ndepartment: bureau\n");
    expect_errors(f, 1, "services/general.yaml", 4, 7,
                  "key \"ur\": \"General\" is not written in Urdu");
}

static void duplicate_department_id_across_files(void **state)
{
    FX;
    put(f, "departments/zz_copy.yaml",
        "# a copy\nid: bureau\nname: {en: \"Copy\", ur: \"نقل\"}\nplugin: staff_inbox\n");
    expect_errors(f, 1, "departments/zz_copy.yaml", 2, 5,
                  "key \"id\": department \"bureau\" is already defined at ");
    struct rb_errors e;
    load(f, &e);
    char first[160];
    snprintf(first, sizeof(first), "already defined at %s/departments/bureau.yaml:1:1", f->dir);
    assert_non_null(strstr(e.msgs[0], first)); /* names both places */
    rb_errors_free(&e);
}

static void duplicate_service_and_district_ids(void **state)
{
    FX;
    put(f, "services/other.yaml",
        "id: general\nname: {en: \"Other\", ur: \"دیگر\"}\ndepartment: bureau\n");
    put(f, "districts.yaml", "- id: lahore\n  name: {en: Lahore, ur: \"لاہور\"}\n"
                             "- id: lahore\n  name: {en: Lahore, ur: \"لاہور\"}\n");
    expect_errors(f, 2, "services/other.yaml", 1, 5,
                  "key \"id\": service \"general\" is already defined at ", "districts.yaml", 3,
                  7, "key \"id\": district \"lahore\" is already defined at ");
}

static void service_names_missing_department(void **state)
{
    FX;
    put(f, "services/general.yaml",
        "id: general\nname: {en: \"General\", ur: \"عمومی\"}\ndepartment: revnue\n");
    expect_errors(f, 1, "services/general.yaml", 3, 13,
                  "key \"department\": no department \"revnue\" (known: bureau)");
}

static void unreadable_include(void **state)
{
    FX;
    put_rabta(f, "departments: departments/*.yaml\ndistricts: missing.yaml\n");
    expect_errors(f, 1, "rabta.yaml", 2, 12, "key \"districts\": cannot open ");
    struct rb_errors e;
    load(f, &e);
    assert_non_null(strstr(e.msgs[0], "/missing.yaml: No such file or directory"));
    rb_errors_free(&e);
    /* A directory where a file should be. */
    put_rabta(f, "departments: departments/*.yaml\ndistricts: services\n");
    expect_errors(f, 1, "rabta.yaml", 2, 12, "it is not a regular file");
}

static void glob_without_match(void **state)
{
    FX;
    put_rabta(f, "departments: departments/*.yml\n");
    expect_errors(f, 1, "rabta.yaml", 1, 14, "key \"departments\": no file matches ");
}

static void yaml_syntax_error(void **state)
{
    FX;
    put(f, "departments/bureau.yaml",
        "id: bureau\nname: {en: \"Bureau\", ur: \"بیورو\"\nplugin: staff_inbox\n");
    expect_errors(f, 2, "departments/bureau.yaml", 3, 1, "invalid YAML: ", "services/general.yaml",
                  3, 13, "no department");
}

static void duplicate_map_key(void **state)
{
    FX;
    put_rabta(f, "departments: departments/*.yaml\nserver:\n  listen: \"127.0.0.1:1\"\n"
                         "  listen: \"127.0.0.1:2\"\n");
    expect_errors(f, 1, "rabta.yaml", 4, 3,
                  "key \"listen\" appears twice in the same map (first at line 3, column 3)");
}

static void anchor_and_alias(void **state)
{
    FX;
    put_rabta(f, "departments: departments/*.yaml\nserver: &s\n  listen: \"127.0.0.1:1\"\n"
                         "database: *s\n");
    expect_errors(f, 2, "rabta.yaml", 2, 9, "anchor \"&s\" is not allowed", "rabta.yaml", 4, 11,
                  "alias \"*s\" is not allowed");
}

static void bad_listen_address(void **state)
{
    FX;
    put_rabta(f, "departments: departments/*.yaml\nserver:\n  listen: localhost8080\n");
    expect_errors(f, 1, "rabta.yaml", 3, 11,
                  "key \"listen\": \"localhost8080\" is not an address and port such as "
                  "127.0.0.1:8080 or [::1]:8080");
    put_rabta(f, "departments: departments/*.yaml\nserver:\n  listen: \"::1:8080\"\n");
    expect_errors(f, 1, "rabta.yaml", 3, 11, "key \"listen\": \"::1:8080\" is not an address");
    put_rabta(f, "departments: departments/*.yaml\nserver:\n  listen: \"[::1]:http\"\n");
    expect_errors(f, 1, "rabta.yaml", 3, 11, "key \"listen\": \"[::1]:http\" is not an address");
}

static void messages_quiet_hours_and_zone(void **state)
{
    FX;
    put_rabta(f, "departments: departments/*.yaml\nmessages:\n  quiet_hours: \"21:00-08:00\"\n"
                 "  timezone: Asia/Karachi\n");
    struct rb_errors e;
    rb_errors_init(&e);
    struct rb_config *cfg = load(f, &e);
    assert_non_null(cfg);
    assert_string_equal(cfg->messages.quiet_hours, "21:00-08:00");
    assert_string_equal(cfg->messages.timezone, "Asia/Karachi");
    rb_config_free(cfg);
    rb_errors_free(&e);
    put_rabta(f, "departments: departments/*.yaml\nmessages:\n  quiet_hours: \"25:00-08:00\"\n");
    expect_errors(f, 1, "rabta.yaml", 3, 16,
                  "key \"quiet_hours\": expected \"HH:MM-HH:MM\" (or HH:MM:SS) such as "
                  "\"21:00-08:00\"");
    put_rabta(f, "departments: departments/*.yaml\nmessages:\n  timezone: Mars/Olympus\n");
    expect_errors(f, 1, "rabta.yaml", 3, 13, "key \"timezone\": ");
    put_rabta(f, "departments: departments/*.yaml\nmessages:\n  quiet: 1\n");
    expect_errors(f, 1, "rabta.yaml", 3, 3, "unknown key \"quiet\" in messages");
}

static void port_out_of_range(void **state)
{
    FX;
    put_rabta(f, "departments: departments/*.yaml\nserver:\n  listen: \"127.0.0.1:70000\"\n");
    expect_errors(f, 1, "rabta.yaml", 3, 11,
                  "key \"listen\": port 70000 is out of range; use 1 to 65535, or 0 for any free "
                  "port");
}

static void negative_duration(void **state)
{
    FX;
    put_rabta(f, "departments: departments/*.yaml\nserver:\n  shutdown_grace: -5s\n");
    expect_errors(f, 1, "rabta.yaml", 3, 19,
                  "key \"shutdown_grace\": a duration cannot be negative, got \"-5s\"");
}

static void zero_timeout(void **state)
{
    FX;
    put_rabta(f, "departments: departments/*.yaml\nserver:\n  request_timeout: 0s\n");
    expect_errors(f, 1, "rabta.yaml", 3, 20, "key \"request_timeout\": must be more than 0");
}

static void jobs_settings_are_read_and_checked(void **state)
{
    FX;
    put_rabta(f, "departments: departments/*.yaml\njobs:\n  concurrency: 8\n  lease: 1m\n");
    struct rb_errors e;
    struct rb_config *cfg = load(f, &e);
    assert_non_null(cfg);
    assert_int_equal(cfg->jobs.concurrency, 8);
    assert_true(cfg->jobs.lease == 60);
    assert_int_equal(cfg->jobs.batch, 256);      /* default */
    assert_true(cfg->jobs.backoff_base == 10); /* default */
    rb_config_free(cfg);
    rb_errors_free(&e);
    put_rabta(f, "departments: departments/*.yaml\njobs:\n  backoff_base: 1h\n"
                 "  backoff_max: 1m\n");
    expect_errors(f, 1, "rabta.yaml", 4, 16, "key \"backoff_max\": must not be shorter");
    put_rabta(f, "departments: departments/*.yaml\njobs:\n  concurrency: 0\n");
    expect_errors(f, 1, "rabta.yaml", 3, 16, "concurrency");
}

static void triage_department_must_exist(void **state)
{
    FX;
    put_rabta(f, "departments: departments/*.yaml\ntriage_department: triage\n");
    expect_errors(f, 1, "rabta.yaml", 2, 20,
                  "key \"triage_department\": no department \"triage\"");
}

static void bad_size_unit(void **state)
{
    FX;
    put_rabta(f, "departments: departments/*.yaml\nserver:\n  max_body: 1MiBs\n");
    expect_errors(f, 1, "rabta.yaml", 3, 13,
                  "key \"max_body\": unknown size unit \"MiBs\" in \"1MiBs\"");
}

static void bad_id_slug(void **state)
{
    FX;
    put(f, "departments/bureau.yaml",
        "id: Bureau-1\nname: {en: \"Bureau\", ur: \"بیورو\"}\nplugin: staff_inbox\n");
    put(f, "services/general.yaml",
        "id: x\nname: {en: \"General\", ur: \"عمومی\"}\ndepartment: bureau\n");
    expect_errors(f, 2, "departments/bureau.yaml", 1, 5,
                  "key \"id\": \"Bureau-1\" is not a valid id; use 2 to 40 lowercase letters, "
                  "digits or underscores",
                  "services/general.yaml", 1, 5, "key \"id\": \"x\" is not a valid id");
}

static void department_plugin_not_listed(void **state)
{
    FX;
    put(f, "departments/bureau.yaml",
        "id: bureau\nname: {en: \"Bureau\", ur: \"بیورو\"}\nplugin: email\n");
    expect_errors(f, 1, "departments/bureau.yaml", 3, 9,
                  "key \"plugin\": department \"bureau\" uses plugin \"email\", which is not in "
                  "the plugins list of ");
    struct rb_errors e;
    load(f, &e);
    assert_non_null(strstr(e.msgs[0], "(listed: staff_inbox, webhook)"));
    rb_errors_free(&e);
}

static void department_plugin_disabled(void **state)
{
    FX;
    put_rabta(f, "departments: departments/*.yaml\nplugins:\n  - name: staff_inbox\n"
                         "    enabled: false\n");
    put(f, "services/general.yaml", "id: general\nname: {en: G, ur: \"عمومی\"}\ndepartment: bureau\n");
    expect_errors(f, 1, "departments/bureau.yaml", 3, 9,
                  "uses plugin \"staff_inbox\", which is disabled in ");
}

/* An operator upgrading with the old name of the staff_inbox plugin: the plugins entry and
 * each department naming it get the new name at their file:line:col, not "not listed". */
static void renamed_plugin_names_its_new_name(void **state)
{
    FX;
    put_rabta(f, "departments: departments/*.yaml\nplugins:\n  - name: webhook\n"
                 "  - name: inbox\n    config: {notify_duty_officer: true}\n");
    put(f, "departments/bureau.yaml",
        "id: bureau\nname: {en: \"Bureau\", ur: \"بیورو\"}\nplugin: inbox\n");
    expect_errors(f, 2, "rabta.yaml", 4, 11,
                  "key \"name\": plugin \"inbox\" is now called \"staff_inbox\": write "
                  "\"name: staff_inbox\" here",
                  "departments/bureau.yaml", 3, 9,
                  "key \"plugin\": department \"bureau\" uses plugin \"inbox\", which is now "
                  "called \"staff_inbox\": write \"plugin: staff_inbox\"");
    /* The new name in the list, the old one left in a department file. */
    put_rabta(f, "departments: departments/*.yaml\nplugins:\n  - name: staff_inbox\n");
    expect_errors(f, 1, "departments/bureau.yaml", 3, 9, "is now called \"staff_inbox\"");
    /* An operator's own plugin of that name, with its path, is theirs to keep. */
    put_rabta(f, "departments: departments/*.yaml\nplugins:\n"
                 "  - {name: inbox, path: lib/inbox.so}\n");
    struct rb_errors e;
    struct rb_config *cfg = load(f, &e);
    assert_non_null(cfg);
    assert_string_equal(rb_config_department(cfg, "bureau")->plugin, "inbox");
    rb_config_free(cfg);
    rb_errors_free(&e);
}

static void empty_file(void **state)
{
    FX;
    put(f, "departments/bureau.yaml", "# nothing yet\n");
    expect_errors(f, 2, "departments/bureau.yaml", 1, 1,
                  "the file is empty; expected a department (id, name, plugin)",
                  "services/general.yaml", 3, 13, "no department \"bureau\" (known: none)");
    put_rabta(f, "");
    expect_errors(f, 1, "rabta.yaml", 1, 1, "the file is empty");
}

static void list_where_a_map_is_expected(void **state)
{
    FX;
    put_rabta(f, "departments: departments/*.yaml\nserver:\n  - listen\n  - 8080\n");
    expect_errors(f, 1, "rabta.yaml", 3, 3, "key \"server\": expected a map of settings, got a list");
    put(f, "rabta.yaml", "- departments\n");
    expect_errors(f, 1, "rabta.yaml", 1, 1, "expected a map of settings");
    put(f, "departments/bureau.yaml", "- id: bureau\n");
    put(f, "rabta.yaml", base_rabta);
    expect_errors(f, 2, "departments/bureau.yaml", 1, 1,
                  "expected a department (a map with id, name, plugin), got a list",
                  "services/general.yaml", 3, 13, "no department");
}

static void name_must_be_a_map(void **state)
{
    FX;
    put(f, "departments/bureau.yaml", "id: bureau\nname: Bureau\nplugin: staff_inbox\n");
    expect_errors(f, 2, "departments/bureau.yaml", 2, 7,
                  "key \"name\": expected a map with an English \"en\" and an Urdu \"ur\" name, "
                  "got a value",
                  "services/general.yaml", 3, 13, "no department");
}

static void plugin_config_must_be_a_map(void **state)
{
    FX;
    put_rabta(f, "departments: departments/*.yaml\nplugins:\n  - name: staff_inbox\n"
                         "    config: [1]\n");
    expect_errors(f, 2, "rabta.yaml", 4, 13, "key \"config\": expected a map of settings, got a list",
                  "departments/bureau.yaml", 3, 9, "not in the plugins list");
}

static void invalid_utf8(void **state)
{
    FX;
    static const char text[] = "id: bureau\nname: {en: \"Bur\xe9\x61u\", ur: x}\nplugin: staff_inbox\n";
    put_n(f, "departments/bureau.yaml", text, sizeof(text) - 1);
    expect_errors(f, 2, "departments/bureau.yaml", 2, 16, "the file must be UTF-8 text",
                  "services/general.yaml", 3, 13, "no department");
}

static void too_deep_nesting(void **state)
{
    FX;
    char text[512], *p = text;
    p += sprintf(p, "id: bureau\nname: {en: B, ur: \"بیورو\"}\nplugin: staff_inbox\nconfig: ");
    for (int i = 0; i < 100; i++)
        *p++ = '[';
    for (int i = 0; i < 100; i++)
        *p++ = ']';
    strcpy(p, "\n");
    put(f, "departments/bureau.yaml", text);
    /* The root map is level 1 and "config: " is 8 columns: the 64th "[" is level 65. */
    expect_errors(f, 2, "departments/bureau.yaml", 4, 9 + 63, "nested deeper than 64 levels",
                  "services/general.yaml", 3, 13, "no department");
}

static void over_size_file(void **state)
{
    FX;
    size_t n = 4u * 1024 * 1024 + 100;
    char *text = malloc(n);
    memset(text, ' ', n);
    memcpy(text, "- id: lahore\n#", 14);
    text[n - 1] = '\n';
    put_n(f, "districts.yaml", text, n);
    free(text);
    expect_errors(f, 1, "rabta.yaml", 8, 12,
                  "key \"districts\": ");
    struct rb_errors e;
    load(f, &e);
    assert_non_null(strstr(e.msgs[0], "districts.yaml is 4194404 bytes, larger than the 4 MiB"));
    rb_errors_free(&e);
}

static void multiple_documents(void **state)
{
    FX;
    put(f, "services/general.yaml", "id: general\nname: {en: G, ur: \"عمومی\"}\ndepartment: bureau\n"
                                    "---\nid: other\n");
    expect_errors(f, 1, "services/general.yaml", 4, 1, "a second YAML document starts here");
}

static void bad_contact_details(void **state)
{
    FX;
    put(f, "departments/bureau.yaml",
        "id: bureau\nname: {en: \"Bureau\", ur: \"بیورو\"}\nplugin: staff_inbox\nduty_phone: call me\n"
        "email: bureau.example\n");
    put(f, "services/general.yaml", "id: general\nname: {en: G, ur: \"عمومی\"}\ndepartment: bureau\n");
    expect_errors(f, 3, "departments/bureau.yaml", 4, 13,
                  "key \"duty_phone\": \"call me\" is not a phone number",
                  "departments/bureau.yaml", 5, 8, "key \"email\": \"bureau.example\" is not an "
                  "e-mail address",
                  "services/general.yaml", 3, 13, "no department");
}

static void duty_phone_is_kept_in_e164(void **state)
{
    FX;
    put(f, "departments/bureau.yaml",
        "id: bureau\nname: {en: \"Bureau\", ur: \"بیورو\"}\nplugin: staff_inbox\n"
        "duty_phone: \"0300-123 4567\"\n");
    struct rb_errors e;
    struct rb_config *cfg = load(f, &e);
    for (size_t i = 0; i < e.n; i++)
        print_error("%s\n", e.msgs[i]);
    assert_non_null(cfg);
    assert_string_equal(cfg->departments[0].duty_phone, "+923001234567");
    rb_config_free(cfg);
    rb_errors_free(&e);
}

static void duty_phone_too_short_names_the_file(void **state)
{
    FX;
    put(f, "departments/bureau.yaml",
        "id: bureau\nname: {en: \"Bureau\", ur: \"بیورو\"}\nplugin: staff_inbox\n"
        "duty_phone: \"+92 42 123\"\n");
    expect_errors(f, 2, "departments/bureau.yaml", 4, 13,
                  "key \"duty_phone\": \"+92 42 123\" is not a phone number (it is too short",
                  "services/general.yaml", 3, 13, "no department");
}

static void duplicate_plugin(void **state)
{
    FX;
    put_rabta(f, "departments: departments/*.yaml\nplugins:\n  - name: staff_inbox\n"
                         "  - name: staff_inbox\n");
    expect_errors(f, 1, "rabta.yaml", 4, 11,
                  "key \"name\": plugin \"staff_inbox\" is listed twice (first at line 3, "
                  "column 5)");
}

static void bad_plugin_name(void **state)
{
    FX;
    put_rabta(f, "departments: departments/*.yaml\nplugins:\n  - name: staff_inbox\n"
                 "  - name: Sms-Kannel\n");
    expect_errors(f, 1, "rabta.yaml", 4, 11,
                  "key \"name\": \"Sms-Kannel\" is not a valid name; use 2 to 40 lowercase "
                  "letters, digits or underscores");
}

static void bad_log_level(void **state)
{
    FX;
    put_rabta(f, "departments: departments/*.yaml\nlog:\n  level: loud\n"
                         "plugins: [{name: staff_inbox}]\n");
    expect_errors(f, 1, "rabta.yaml", 3, 10,
                  "key \"level\": unknown log level \"loud\"; use debug, info, warn or error");
}

static void missing_departments_key(void **state)
{
    FX;
    put_rabta(f, "server:\n  listen: \"127.0.0.1:8080\"\n");
    expect_errors(f, 1, "rabta.yaml", 1, 1, "missing required key \"departments\"");
}

static void multiple_errors_reported_together(void **state)
{
    FX;
    put_rabta(f, "server:\n"
                         "  listen: \"127.0.0.1:99999\"\n" /* 1: port */
                         "  max_body: lots\n"              /* 2: size */
                         "database:\n"
                         "  pool_size: 0\n" /* 3: range */
                         "colour: blue\n"   /* 4: unknown key */
                         "plugins:\n"
                         "  - name: staff_inbox\n"
                         "districts: districts.yaml\n"
                         "departments: departments/*.yaml\n"
                         "services: services/*.yaml\n");
    put(f, "services/other.yaml", "id: other\nname: {en: O, ur: \"دیگر\"}\n"
                                  "department: nowhere\n"); /* 5: missing department */
    put(f, "districts.yaml", "- id: Lahore\n  name: {en: Lahore, ur: \"لاہور\"}\n" /* 6 */
                             "- id: kasur\n  name: {en: Kasur}\n");               /* 7 */
    expect_errors(f, 7, "rabta.yaml", 6, 1, "unknown key \"colour\" in the top level",
                  "rabta.yaml", 3, 13, "key \"max_body\": expected a size",
                  "rabta.yaml", 2, 11, "key \"listen\": port 99999 is out of range",
                  "rabta.yaml", 5, 14, "key \"pool_size\": 0 is out of range",
                  "districts.yaml", 1, 7, "key \"id\": \"Lahore\" is not a valid id",
                  "districts.yaml", 4, 9, "missing required key \"ur\" in name",
                  "services/other.yaml", 3, 13, "no department \"nowhere\" (known: bureau)");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sample_config_loads_with_every_department_service_and_district),
        T(base_fixture_is_valid),
        T(every_setting_is_read_and_paths_resolve_against_the_file),
        T(relative_config_path_names_included_files_relatively),
        T(json_shaped_config_loads),
        T(server_limits_are_read_and_routes_merge_with_the_defaults),
        T(server_limits_refuse_bad_rates_blocks_and_routes),
        T(unknown_key),
        T(wrong_type),
        T(missing_required_key),
        T(missing_urdu_name),
        T(urdu_name_not_in_urdu),
        T(duplicate_department_id_across_files),
        T(duty_phone_is_kept_in_e164),
        T(duty_phone_too_short_names_the_file),
        T(duplicate_service_and_district_ids),
        T(service_names_missing_department),
        T(unreadable_include),
        T(glob_without_match),
        T(yaml_syntax_error),
        T(duplicate_map_key),
        T(anchor_and_alias),
        T(bad_listen_address),
        T(messages_quiet_hours_and_zone),
        T(port_out_of_range),
        T(negative_duration),
        T(zero_timeout),
        T(bad_size_unit),
        T(jobs_settings_are_read_and_checked),
        T(triage_department_must_exist),
        T(bad_id_slug),
        T(department_plugin_not_listed),
        T(department_plugin_disabled),
        T(renamed_plugin_names_its_new_name),
        T(empty_file),
        T(list_where_a_map_is_expected),
        T(name_must_be_a_map),
        T(plugin_config_must_be_a_map),
        T(invalid_utf8),
        T(too_deep_nesting),
        T(over_size_file),
        T(multiple_documents),
        T(bad_contact_details),
        T(duplicate_plugin),
        T(bad_plugin_name),
        T(bad_log_level),
        T(missing_departments_key),
        T(multiple_errors_reported_together),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
