/* Plugin ABI checks: a good plugin loads; a wrong ABI number, a wrong descriptor size, a
 * missing magic, a missing entry symbol and a duplicate name are each refused with one
 * sentence naming the file and (where there are two) both versions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <cmocka.h>

#include "config/config.h"
#include "server/plugin.h"

#define PLUGIN(name) RB_TEST_PLUGIN_DIR "/" name ".so"

static const struct rb_plugin *open_one(const char *path, struct rb_errors *errs, void **h)
{
    rb_errors_init(errs);
    return rb_plugin_open(path, h, errs);
}

static void assert_refused(const char *path, const char *const *needles)
{
    struct rb_errors errs;
    void *h = (void *)1;
    const struct rb_plugin *d = open_one(path, &errs, &h);
    assert_null(d);
    assert_null(h);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.msgs[0], path)); /* names the file */
    for (; *needles; needles++) {
        if (!strstr(errs.msgs[0], *needles))
            fail_msg("message \"%s\" lacks \"%s\"", errs.msgs[0], *needles);
    }
    rb_errors_free(&errs);
}

static void good_plugin_loads(void **state)
{
    (void)state;
    struct rb_errors errs;
    void *h;
    const struct rb_plugin *d = open_one(PLUGIN("good"), &errs, &h);
    assert_non_null(d);
    assert_non_null(h);
    assert_int_equal(errs.n, 0);
    assert_string_equal(d->name, "good");
    assert_int_equal(d->abi, RB_PLUGIN_ABI);
    assert_int_equal(d->kind, RB_PLUGIN_CHANNEL);
    /* Only the entry point is exported: internal functions are hidden. */
    assert_non_null(dlsym(h, RB_PLUGIN_ENTRY_SYMBOL));
    assert_null(dlsym(h, "good_init"));
    assert_null(dlsym(h, "on_good"));
    dlclose(h);
    rb_errors_free(&errs);
}

static void wrong_abi_is_refused_naming_both_versions(void **state)
{
    (void)state;
    char theirs[32], ours[32];
    snprintf(theirs, sizeof(theirs), "plugin ABI %u", RB_PLUGIN_ABI + 1);
    snprintf(ours, sizeof(ours), "speaks ABI %u", RB_PLUGIN_ABI);
    const char *needles[] = {theirs, ours, "rebuild", NULL};
    assert_refused(PLUGIN("bad_abi"), needles);
}

static void wrong_size_is_refused(void **state)
{
    (void)state;
    char theirs[64], ours[64];
    snprintf(theirs, sizeof(theirs), "%zu bytes", sizeof(struct rb_plugin) + 16);
    snprintf(ours, sizeof(ours), "as %zu bytes", sizeof(struct rb_plugin));
    const char *needles[] = {theirs, ours, NULL};
    assert_refused(PLUGIN("bad_size"), needles);
}

static void missing_magic_is_refused(void **state)
{
    (void)state;
    const char *needles[] = {"magic", "not a Rabta plugin", NULL};
    assert_refused(PLUGIN("bad_magic"), needles);
}

static void missing_symbol_is_refused(void **state)
{
    (void)state;
    const char *needles[] = {"no " RB_PLUGIN_ENTRY_SYMBOL " symbol", NULL};
    assert_refused(PLUGIN("no_symbol"), needles);
}

static void missing_file_is_refused(void **state)
{
    (void)state;
    const char *needles[] = {"cannot be loaded", NULL};
    assert_refused(PLUGIN("does_not_exist"), needles);
}

/* A hand-built config listing the given plugins by path. */
static struct rb_config *config_with(const char *const *names, const char *const *paths, size_t n)
{
    struct rb_config *cfg = calloc(1, sizeof(*cfg));
    cfg->plugins = calloc(n, sizeof(*cfg->plugins));
    cfg->n_plugins = n;
    for (size_t i = 0; i < n; i++) {
        cfg->plugins[i].name = strdup(names[i]);
        cfg->plugins[i].path = paths[i] ? strdup(paths[i]) : NULL;
        cfg->plugins[i].enabled = 1;
        cfg->plugins[i].file = "rabta.yaml";
        cfg->plugins[i].line = (int)i + 1;
        cfg->plugins[i].col = 5;
    }
    return cfg;
}

static void config_free(struct rb_config *cfg)
{
    for (size_t i = 0; i < cfg->n_plugins; i++) {
        free(cfg->plugins[i].name);
        free(cfg->plugins[i].path);
    }
    free(cfg->plugins);
    free(cfg);
}

static void duplicate_name_is_refused(void **state)
{
    (void)state;
    const char *names[] = {"good", "good"};
    const char *paths[] = {PLUGIN("good"), PLUGIN("dup_name")};
    struct rb_config *cfg = config_with(names, paths, 2);
    struct rb_errors errs;
    rb_errors_init(&errs);
    struct rb_plugins *ps = rb_plugins_load(cfg, &errs);
    assert_null(ps);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.msgs[0], PLUGIN("dup_name")));
    assert_non_null(strstr(errs.msgs[0], "already taken by " PLUGIN("good")));
    rb_errors_free(&errs);
    config_free(cfg);
}

static void name_mismatch_is_refused_with_position(void **state)
{
    (void)state;
    const char *names[] = {"staff_inbox"};
    const char *paths[] = {PLUGIN("good")};
    struct rb_config *cfg = config_with(names, paths, 1);
    struct rb_errors errs;
    rb_errors_init(&errs);
    assert_null(rb_plugins_load(cfg, &errs));
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.msgs[0], "rabta.yaml:1:5:"));
    assert_non_null(strstr(errs.msgs[0], "calls itself \"good\""));
    rb_errors_free(&errs);
    config_free(cfg);
}

static void every_bad_plugin_is_reported_at_once(void **state)
{
    (void)state;
    const char *names[] = {"bad_abi", "bad_size", "good", "no_symbol"};
    const char *paths[] = {PLUGIN("bad_abi"), PLUGIN("bad_size"), PLUGIN("good"),
                           PLUGIN("no_symbol")};
    struct rb_config *cfg = config_with(names, paths, 4);
    struct rb_errors errs;
    rb_errors_init(&errs);
    assert_null(rb_plugins_load(cfg, &errs));
    assert_int_equal(errs.n, 3);
    rb_errors_free(&errs);
    config_free(cfg);
}

static void good_set_loads_and_is_found_by_name(void **state)
{
    (void)state;
    const char *names[] = {"good"};
    const char *paths[] = {PLUGIN("good")};
    struct rb_config *cfg = config_with(names, paths, 1);
    struct rb_errors errs;
    rb_errors_init(&errs);
    struct rb_plugins *ps = rb_plugins_load(cfg, &errs);
    assert_non_null(ps);
    assert_int_equal(errs.n, 0);
    assert_int_equal(rb_plugins_count(ps), 1);
    assert_non_null(rb_plugins_get(ps, "good"));
    assert_null(rb_plugins_get(ps, "staff_inbox"));
    rb_plugins_free(ps);
    rb_errors_free(&errs);
    config_free(cfg);
}

static void host_api_table_is_complete(void **state)
{
    (void)state;
    const struct rb_host_api *api = rb_host_api_get();
    assert_int_equal(api->size, sizeof(struct rb_host_api));
    assert_int_equal(api->abi, RB_PLUGIN_ABI);
    /* Every entry is set: a NULL entry would crash a plugin that trusts the table. */
    const void *const *slots = (const void *const *)((const char *)api +
                                                     offsetof(struct rb_host_api, log));
    size_t n = (sizeof(*api) - offsetof(struct rb_host_api, log)) / sizeof(void *);
    for (size_t i = 0; i < n; i++)
        if (!slots[i])
            fail_msg("host API entry %zu is NULL", i);
    assert_true(RB_HOST_HAS(api, req_peer));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_plugin_loads),
        cmocka_unit_test(wrong_abi_is_refused_naming_both_versions),
        cmocka_unit_test(wrong_size_is_refused),
        cmocka_unit_test(missing_magic_is_refused),
        cmocka_unit_test(missing_symbol_is_refused),
        cmocka_unit_test(missing_file_is_refused),
        cmocka_unit_test(duplicate_name_is_refused),
        cmocka_unit_test(name_mismatch_is_refused_with_position),
        cmocka_unit_test(every_bad_plugin_is_reported_at_once),
        cmocka_unit_test(good_set_loads_and_is_found_by_name),
        cmocka_unit_test(host_api_table_is_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
