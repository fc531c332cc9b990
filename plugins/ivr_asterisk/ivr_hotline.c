/* The inbound hotline (docs/ivr.md "Hotline"): the dialplan sends the bureau's number to
 * AGI(agi://rabta:4573/hotline). The caller picks a language, then: a voice complaint (a
 * service from a keypad menu, a recording, a case with the recording and the caller's phone,
 * the tracking number read back and sent by SMS); the status of their latest cases; or
 * feedback (a keypad rating and a recording).
 *
 * One struct hl per call, one enum state, one function per step. Each step sends one AGI
 * command; its reply calls on_reply, which moves to the next step. A hang-up at any point
 * ends the call (a recording already made is still filed). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ivr.h"
#include "ivr_agi.h"

enum hl_state {
    H_ANSWER, H_LANG, H_MAIN, H_INVALID, H_SERVICE_INTRO, H_SERVICE_ITEM, H_SERVICE_WAIT,
    H_RECORD_INTRO, H_RECORD, H_SUBMITTING, H_TRACK_INTRO, H_TRACK, H_STATUS_LOOKUP,
    H_STATUS_CASE, H_STATUS_TRACK, H_STATUS_STATE, H_RATE, H_BYE, H_HANGUP, H_DONE
};

enum hl_intent { I_NONE, I_COMPLAINT, I_STATUS, I_FEEDBACK };

struct hl {
    struct rb_agi_conn *c; /* owned until closed; NULL once closed */
    json_t *lua;           /* a reference to the settings the call started with */
    enum hl_state state;
    enum hl_intent intent;
    enum hl_state retry;   /* the menu asked again after "invalid" */
    int tries;
    char lang[3];
    char phone[20];        /* E.164, or "" */
    char uniqueid[64];
    const char *service;   /* borrowed from lua */
    size_t item;           /* service menu / status list position */
    int rating;
    int busy;              /* intake's answer is awaited */
    int looking;           /* the caller's cases are being read (status_prefetch) */
    int looked;            /* 1: the cases below are read; -1: the read failed */
    char tracking[32];
    char (*cases)[2][40];  /* status: tracking, status */
    size_t n_cases;
};

static void step(struct hl *h);

static void hl_free(struct hl *h)
{
    json_decref(h->lua);
    free(h->cases);
    free(h);
}

/* Ends the AGI side; the struct lives on while intake or the database owes an answer. */
static void hl_close(struct hl *h)
{
    if (h->c) {
        rb_agi_close(h->c);
        h->c = NULL;
    }
    h->state = H_DONE;
    if (!h->busy && !h->looking)
        hl_free(h);
}

static const json_t *hotline(const struct hl *h)
{
    return json_object_get(h->lua, "hotline");
}

static void on_reply(struct rb_agi_conn *c, const struct rb_agi_reply *r, void *arg);

static void cmd_play(struct hl *h, const char *name, const char *escape)
{
    char path[256];
    const struct rb_ivr_lua l = {h->lua, rb_ivr_str(json_object_get(h->lua, "prompts"), "dir",
                                                    "rabta")};
    rb_ivr_prompt(&l, h->lang, name, path, sizeof(path));
    if (rb_agi_cmd(h->c, on_reply, h, "STREAM FILE %s \"%s\"", path, escape) != RB_OK)
        hl_close(h);
}

static void cmd_ask(struct hl *h, const char *name)
{
    char path[256];
    const struct rb_ivr_lua l = {h->lua, rb_ivr_str(json_object_get(h->lua, "prompts"), "dir",
                                                    "rabta")};
    rb_ivr_prompt(&l, h->lang, name, path, sizeof(path));
    if (rb_agi_cmd(h->c, on_reply, h, "GET DATA %s %d 1", path,
                   (int)(rb_ivr.conf.key_timeout * 1000)) != RB_OK)
        hl_close(h);
}

static void cmd(struct hl *h, const char *line)
{
    if (rb_agi_cmd(h->c, on_reply, h, "%s", line) != RB_OK)
        hl_close(h);
}

/* The key a reply carries: GET DATA "result=1", STREAM FILE / WAIT FOR DIGIT "result=49";
 * '\0' for none; -1 for a hang-up. */
static int reply_key(enum hl_state st, const struct rb_agi_reply *r)
{
    if (r->code != 200 || (r->is_num && r->num < 0))
        return -1;
    if (st == H_LANG || st == H_MAIN || st == H_RATE)
        return r->result[0] && !r->result[1] ? r->result[0] : '\0';
    return r->is_num && r->num > 0 && r->num < 128 ? (int)r->num : '\0';
}

/* A menu key: the value mapped in Lua, or NULL (asked again after "invalid", up to the
 * configured tries; then goodbye). */
static const char *menu_pick(struct hl *h, const char *table, int key)
{
    char k[2] = {(char)key, '\0'};
    const char *v = key ? rb_ivr_str(json_object_get(hotline(h), table), k, NULL) : NULL;
    if (v)
        h->tries = 0;
    return v;
}

static void again(struct hl *h, enum hl_state menu)
{
    if (++h->tries >= rb_ivr.conf.menu_tries) {
        h->state = H_BYE;
    } else {
        h->retry = menu;
        h->state = H_INVALID;
    }
    step(h);
}

/* ---- the recording and the case ----------------------------------------------------------- */

static void rec_name(const struct hl *h, char *buf, size_t len)
{
    snprintf(buf, len, "rabta-%s", h->uniqueid);
}

/* Reads the recording Asterisk wrote (recordings_dir/NAME.wav). Returns a new buffer (caller
 * frees) or NULL with the reason logged. */
static char *rec_read(struct hl *h, size_t *len)
{
    char name[96], path[1024];
    rec_name(h, name, sizeof(name));
    snprintf(path, sizeof(path), "%s/%s.wav", rb_ivr.conf.recordings_dir, name);
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || st.st_size <= 44 ||
        (long long)st.st_size > rb_ivr.conf.max_recording) {
        rb_ivr_api->log(rb_ivr.ctx, RB_LOG_WARN, "call %s: no usable recording at %s (%s)",
                        h->uniqueid, path,
                        !f ? strerror(errno) : "empty or over max_recording");
        if (f)
            fclose(f);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size);
    size_t got = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!buf || got != (size_t)st.st_size) {
        free(buf);
        return NULL;
    }
    unlink(path); /* it is the case's attachment from here on */
    *len = got;
    return buf;
}

static void on_case(const struct rb_case_result *r, int status, const char *err, void *arg)
{
    struct hl *h = arg;
    h->busy = 0;
    if (status != 0) {
        rb_ivr_api->log(rb_ivr.ctx, RB_LOG_ERROR, "call %s: the voice %s was not stored: %s",
                        h->uniqueid, h->intent == I_FEEDBACK ? "feedback" : "complaint",
                        err ? err : "?");
    } else {
        snprintf(h->tracking, sizeof(h->tracking), "%s", r->tracking_no);
        rb_ivr_api->log(rb_ivr.ctx, RB_LOG_INFO, "call %s: case %s from %s", h->uniqueid,
                        r->tracking_no, h->phone[0] ? h->phone : "an unknown number");
    }
    if (h->state == H_DONE) {
        if (!h->looking)
            hl_free(h);
        return;
    }
    h->state = status != 0 ? H_BYE : h->intent == I_FEEDBACK ? H_BYE : H_TRACK_INTRO;
    if (status != 0)
        cmd_play(h, "sorry", "");
    else
        step(h);
}

static void submit(struct hl *h)
{
    size_t len = 0;
    char *wav = rec_read(h, &len);
    if (!wav) {
        if (h->c) {
            h->state = H_BYE;
            cmd_play(h, "sorry", "");
        } else {
            hl_close(h);
        }
        return;
    }
    char text[200];
    snprintf(text, sizeof(text), "%s left by phone (IVR) as a recording of %zu bytes.",
             h->intent == I_FEEDBACK ? "Feedback" : "A voice complaint", len);
    char origin[160];
    snprintf(origin, sizeof(origin), "{\"asterisk_uniqueid\":\"%s\"}", h->uniqueid);
    struct rb_case_submission s = {
        .size = sizeof(s),
        .kind = h->intent == I_FEEDBACK ? "feedback" : "complaint",
        .service = h->service,
        .text = text,
        .text_len = strlen(text),
        .channel = "ivr",
        .language = h->lang,
        .phone = h->phone[0] ? h->phone : NULL,
        .anonymous = h->phone[0] ? 0 : 1,
        .lat = 0.0 / 0.0,
        .lon = 0.0 / 0.0,
        .rating = h->intent == I_FEEDBACK ? h->rating : 0,
        .photo = wav,
        .photo_len = len,
        .photo_type = "audio/wav",
        .reply_template = h->phone[0] ? "sms.received" : NULL,
        .reply_channel = h->phone[0] ? "sms" : NULL,
        .reply_to = h->phone[0] ? h->phone : NULL,
        .origin = origin,
    };
    char why[256];
    h->state = h->c ? H_SUBMITTING : H_DONE;
    h->busy = 1;
    int rc = rb_ivr_api->case_submit(rb_ivr.ctx, &s, on_case, h, why, sizeof(why));
    free(wav);
    if (rc != RB_OK) {
        h->busy = 0;
        rb_ivr_api->log(rb_ivr.ctx, RB_LOG_ERROR, "call %s: the voice complaint was refused: "
                                                  "%s", h->uniqueid, rc == RB_EINVAL ? why : "overloaded");
        if (!h->c) {
            hl_free(h);
            return;
        }
        h->state = H_BYE;
        cmd_play(h, "sorry", "");
    }
}

/* ---- status by phone ------------------------------------------------------------------------ */

/* The caller's cases are known (or their read failed): the status menu goes on. */
static void status_go(struct hl *h)
{
    if (h->looked < 0) {
        h->state = H_BYE;
        cmd_play(h, "sorry", "");
        return;
    }
    h->item = 0;
    if (h->n_cases == 0) {
        h->state = H_BYE;
        cmd_play(h, "no-cases", "");
        return;
    }
    h->state = H_STATUS_CASE;
    step(h);
}

static void on_cases(const struct rb_db_result *res, const char *err, void *arg)
{
    struct hl *h = arg;
    h->looking = 0;
    if (h->state == H_DONE) {
        if (!h->busy)
            hl_free(h);
        return;
    }
    int n = err ? 0 : rb_ivr_api->db_ntuples(res);
    h->cases = calloc((size_t)(n > 0 ? n : 1), sizeof(*h->cases));
    for (int i = 0; h->cases && i < n; i++) {
        snprintf(h->cases[i][0], 40, "%s", rb_ivr_api->db_value(res, i, 0));
        snprintf(h->cases[i][1], 40, "%s", rb_ivr_api->db_value(res, i, 1));
    }
    h->n_cases = h->cases ? (size_t)n : 0;
    h->looked = err || !h->cases ? -1 : 1;
    if (h->state == H_STATUS_LOOKUP) /* the caller asked before the answer came */
        status_go(h);
}

/* Reads the caller's latest cases while the main menu plays, so that the status key is
 * answered without waiting for the database. Once a call. */
static void status_prefetch(struct hl *h)
{
    if (!h->phone[0] || h->looking || h->looked)
        return;
    const char *p[] = {h->phone, "3"};
    h->looking = 1;
    if (rb_ivr_api->db_query(rb_ivr.ctx,
                             "SELECT tracking_no, status FROM rabta_cases_by_phone($1, $2::int)",
                             2, p, on_cases, h) != RB_OK) {
        h->looking = 0;
        h->looked = -1;
    }
}

/* The caller chose status: their cases, read already or on the way. */
static void status_lookup(struct hl *h)
{
    if (!h->phone[0]) {
        h->state = H_BYE;
        cmd_play(h, "no-cases", "");
        return;
    }
    status_prefetch(h);
    if (!h->looking)
        status_go(h);
}

/* "RB-ABCD-EFGH" -> "RBABCDEFGH": SAY ALPHA reads each letter and digit. */
static void say_tracking(struct hl *h, const char *t)
{
    char plain[40];
    size_t n = 0;
    for (const char *p = t; *p && n + 1 < sizeof(plain); p++)
        if (isalnum((unsigned char)*p))
            plain[n++] = *p;
    plain[n] = '\0';
    char line[80];
    snprintf(line, sizeof(line), "SAY ALPHA %s \"\"", plain);
    cmd(h, line);
}

/* ---- the steps ------------------------------------------------------------------------------ */

static size_t n_services(const struct hl *h)
{
    return json_array_size(json_object_get(hotline(h), "services"));
}

/* Sends the command of h->state. */
static void step(struct hl *h)
{
    char line[1200], name[96];
    switch (h->state) {
    case H_ANSWER: cmd(h, "ANSWER"); break;
    case H_LANG: cmd_ask(h, "choose-language"); break;
    case H_MAIN:
        status_prefetch(h); /* first: a failed command frees h unless a read is owed */
        cmd_ask(h, "main-menu");
        break;
    case H_INVALID: cmd_play(h, "invalid", ""); break;
    case H_SERVICE_INTRO: cmd_play(h, "choose-service", "123456789"); break;
    case H_SERVICE_ITEM:
        snprintf(name, sizeof(name), "service-%s",
                 json_string_value(json_array_get(json_object_get(hotline(h), "services"),
                                                  h->item)));
        cmd_play(h, name, "123456789");
        break;
    case H_SERVICE_WAIT:
        snprintf(line, sizeof(line), "WAIT FOR DIGIT %d", (int)(rb_ivr.conf.key_timeout * 1000));
        cmd(h, line);
        break;
    case H_RECORD_INTRO: cmd_play(h, "record-after-beep", ""); break;
    case H_RECORD:
        rec_name(h, name, sizeof(name));
        snprintf(line, sizeof(line), "RECORD FILE %s/%s wav \"#\" %d 0 BEEP s=%d",
                 rb_ivr.conf.asterisk_recordings_dir ? rb_ivr.conf.asterisk_recordings_dir
                                                     : rb_ivr.conf.recordings_dir,
                 name, (int)(rb_ivr.conf.record_max * 1000), (int)rb_ivr.conf.record_silence);
        cmd(h, line);
        break;
    case H_TRACK_INTRO: cmd_play(h, "registered", ""); break;
    case H_TRACK: say_tracking(h, h->tracking); break;
    case H_STATUS_LOOKUP: status_lookup(h); break;
    case H_STATUS_CASE: cmd_play(h, "your-case", ""); break;
    case H_STATUS_TRACK: say_tracking(h, h->cases[h->item][0]); break;
    case H_STATUS_STATE:
        snprintf(name, sizeof(name), "status-%s", h->cases[h->item][1]);
        cmd_play(h, name, "");
        break;
    case H_RATE: cmd_ask(h, "feedback-rate"); break;
    case H_BYE: cmd_play(h, "goodbye", ""); break;
    case H_HANGUP: cmd(h, "HANGUP"); break;
    case H_SUBMITTING:
    case H_DONE: break;
    }
}

static void pick_service(struct hl *h, int key)
{
    size_t i = key >= '1' && key <= '9' ? (size_t)(key - '1') : (size_t)-1;
    if (i >= n_services(h)) {
        again(h, H_SERVICE_INTRO);
        return;
    }
    h->tries = 0;
    h->service = json_string_value(json_array_get(json_object_get(hotline(h), "services"), i));
    h->state = H_RECORD_INTRO;
    step(h);
}

static void main_choice(struct hl *h, int key)
{
    const char *v = menu_pick(h, "main", key);
    if (!v) {
        again(h, H_MAIN);
        return;
    }
    h->intent = strcmp(v, "complaint") == 0 ? I_COMPLAINT
                : strcmp(v, "status") == 0  ? I_STATUS
                                            : I_FEEDBACK;
    h->state = h->intent == I_COMPLAINT ? H_SERVICE_INTRO
               : h->intent == I_STATUS  ? H_STATUS_LOOKUP
                                        : H_RATE;
    step(h);
}

/* The reply to the command of h->state: the next state. */
static void advance(struct hl *h, const struct rb_agi_reply *r)
{
    int key = reply_key(h->state, r);
    if (key < 0 && h->state != H_RECORD) {
        hl_close(h); /* hung up, or a dead channel */
        return;
    }
    switch (h->state) {
    case H_ANSWER: h->state = H_LANG; break;
    case H_LANG: {
        const char *l = menu_pick(h, "languages", key);
        if (!l) {
            again(h, H_LANG);
            return;
        }
        snprintf(h->lang, sizeof(h->lang), "%s", l);
        h->state = H_MAIN;
        break;
    }
    case H_MAIN: main_choice(h, key); return;
    case H_INVALID: h->state = h->retry; break;
    case H_SERVICE_INTRO:
    case H_SERVICE_ITEM:
        if (key) {
            pick_service(h, key);
            return;
        }
        h->item = h->state == H_SERVICE_INTRO ? 0 : h->item + 1;
        h->state = h->item < n_services(h) ? H_SERVICE_ITEM : H_SERVICE_WAIT;
        break;
    case H_SERVICE_WAIT:
        if (!key) {
            again(h, H_SERVICE_INTRO);
            return;
        }
        pick_service(h, key);
        return;
    case H_RECORD_INTRO: h->state = H_RECORD; break;
    case H_RECORD:
        if (key < 0 || rb_agi_hungup(h->c)) {
            rb_agi_close(h->c); /* the caller is gone; the recording is still filed */
            h->c = NULL;
        }
        submit(h);
        return;
    case H_TRACK_INTRO: h->state = H_TRACK; break;
    case H_TRACK: h->state = H_BYE; break;
    case H_STATUS_CASE: h->state = H_STATUS_TRACK; break;
    case H_STATUS_TRACK: h->state = H_STATUS_STATE; break;
    case H_STATUS_STATE:
        h->state = ++h->item < h->n_cases ? H_STATUS_CASE : H_BYE;
        break;
    case H_RATE:
        if (key < '1' || key > '5') {
            again(h, H_RATE);
            return;
        }
        h->rating = key - '0';
        h->tries = 0;
        h->state = H_RECORD_INTRO;
        break;
    case H_BYE: h->state = H_HANGUP; break;
    case H_HANGUP: hl_close(h); return;
    default: return;
    }
    step(h);
}

static void on_reply(struct rb_agi_conn *c, const struct rb_agi_reply *r, void *arg)
{
    (void)c;
    struct hl *h = arg;
    if (!r) { /* the connection is gone */
        if (h->state == H_RECORD) {
            rb_agi_close(h->c);
            h->c = NULL;
            submit(h);
            return;
        }
        hl_close(h);
        return;
    }
    advance(h, r);
}

static void on_gone(struct rb_agi_conn *c, void *arg)
{
    (void)c;
    struct hl *h = arg;
    hl_close(h); /* what intake or the database still owes finds H_DONE and frees it */
}

void rb_ivr_hotline_start(struct rb_agi_conn *c)
{
    struct hl *h = calloc(1, sizeof(*h));
    if (!h || !rb_ivr.lua.data) {
        free(h);
        rb_agi_close(c);
        return;
    }
    h->c = c;
    h->lua = json_incref(rb_ivr.lua.data);
    snprintf(h->lang, sizeof(h->lang), "%s",
             rb_ivr_str(hotline(h), "default_language", "ur"));
    const char *uid = rb_agi_env(c, "agi_uniqueid");
    size_t n = 0;
    for (const char *p = uid ? uid : ""; *p && n + 1 < sizeof(h->uniqueid); p++)
        h->uniqueid[n++] = isalnum((unsigned char)*p) ? *p : '-';
    h->uniqueid[n] = '\0';
    if (!n)
        snprintf(h->uniqueid, sizeof(h->uniqueid), "%p", (void *)h);
    const char *cid = rb_agi_env(c, "agi_callerid"), *why;
    if (!cid || rb_ivr_api->phone_normalize(cid, h->phone, sizeof(h->phone), &why) != RB_OK)
        h->phone[0] = '\0';
    rb_agi_set_gone(c, on_gone, h);
    h->state = H_ANSWER;
    step(h);
}
