/* hone select --method star-agents: agents from the star_agents list, the large model, the judge; the run itself
 * is hone_star_run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hone/star_agents.h"
#include "select_star.h"

static const hone_key_spec agent_keys[] = {
    {"name", HONE_KEY_STRING, NULL, "the agent's name (logs, star_base_pairs, star_judge)"},
    {"role", HONE_KEY_STRING, "both", "rewriter | responder | both | judge"},
    {"model", HONE_KEY_STRING, NULL, "a hone model folder"},
    {"chat_template", HONE_KEY_STRING, NULL, "model agents: built-in name or Jinja file (default: the model's)"},
    {"url", HONE_KEY_STRING, NULL, "an OpenAI-compatible base URL (http://host:port/v1)"},
    {"model_name", HONE_KEY_STRING, NULL, "the endpoint's model name"},
    {"api_key_env", HONE_KEY_STRING, NULL, "environment variable holding the endpoint's API key"},
    {"max_tokens", HONE_KEY_INT, "0", "new tokens per reply (0 = 1024)"},
    {"temperature", HONE_KEY_FLOAT, "0", "sampling temperature (0 = greedy)"},
    {"timeout", HONE_KEY_FLOAT, "0", "endpoint: seconds per attempt (0 = 120)"},
    {"max_retries", HONE_KEY_INT, "0", "endpoint: retries on timeouts, 429 and 5xx (0 = 4, -1 = none)"},
    {"concurrency", HONE_KEY_INT, "0", "endpoint: requests in flight at once (0 = 4)"},
};

typedef struct {
    hone_star_agent *agents; /* every agent, in list order */
    int *roles;              /* bit 1: rewriter, bit 2: responder, 4: judge only */
    size_t n;
} agent_list;

static void agents_free(agent_list *a) {
    for (size_t i = 0; i < a->n; i++) hone_teacher_free(a->agents[i].teacher);
    free(a->agents);
    free(a->roles);
}

/* Opens the teacher of every star_agents item; errors name the config file and item. */
static hone_status open_agents(const hone_settings *s, agent_list *a) {
    const hone_settings_record *items;
    const size_t n = hone_settings_records(s, "star_agents", &items);
    const char *cfg = hone_settings_config_path(s) ? hone_settings_config_path(s) : "--star-agents";
    a->agents = calloc(n + 1, sizeof *a->agents);
    a->roles = calloc(n + 1, sizeof *a->roles);
    if (!a->agents || !a->roles) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const hone_settings_record *r = &items[i];
        HONE_TRY(hone_settings_check_record(s, "star_agents", i, agent_keys, sizeof agent_keys / sizeof *agent_keys));
        const char *name = hone_settings_record_str(r, "name");
        const char *role = hone_settings_record_str(r, "role") ? hone_settings_record_str(r, "role") : "both";
        if (r->scalar || !name || !*name || strchr(name, '/'))
            return hone_errorf(HONE_ERR_INVALID,
                               "%s:%d: star_agents item %zu needs a 'name' without '/' (and model "
                               "or url)",
                               cfg, r->line, i + 1);
        for (size_t k = 0; k < i; k++)
            if (!strcmp(a->agents[k].name, name))
                return hone_errorf(HONE_ERR_INVALID, "%s:%d: star_agents: two agents are named '%s'", cfg, r->line,
                                   name);
        static const char *const roles[] = {"rewriter", "responder", "both", "judge"};
        static const int bits[] = {1, 2, 3, 4};
        for (int k = 0; k < 4; k++)
            if (!strcmp(role, roles[k])) a->roles[i] = bits[k];
        if (!a->roles[i])
            return hone_errorf(HONE_ERR_INVALID,
                               "%s:%d: star_agents item %zu: role '%s' is not rewriter, responder, "
                               "both or judge",
                               cfg, r->line, i + 1, role);
        const hone_teacher_options to = {
            .model_dir = hone_settings_record_str(r, "model"),
            .chat_template = hone_settings_record_str(r, "chat_template"),
            .base_url = hone_settings_record_str(r, "url"),
            .model_name = hone_settings_record_str(r, "model_name"),
            .api_key_env = hone_settings_record_str(r, "api_key_env"),
            .timeout_seconds = hone_settings_record_float(r, "timeout", 0),
            .max_retries = (int)hone_settings_record_int(r, "max_retries", 0),
            .concurrency = (int)hone_settings_record_int(r, "concurrency", 0),
            .temperature = (float)hone_settings_record_float(r, "temperature", 0),
            .max_tokens = (int)hone_settings_record_int(r, "max_tokens", 0),
            .seed = (uint64_t)hone_settings_int(s, "seed"),
        };
        a->agents[i].name = name;
        hone_status st = hone_teacher_open(&a->agents[i].teacher, &to);
        if (st != HONE_OK)
            return hone_error_context(st, "%s:%d: star_agents item %zu ('%s')", cfg, r->line, i + 1, name);
        a->n = i + 1;
    }
    return HONE_OK;
}

/* The agents of one role (bit), copied into out (n + 1 slots); returns their count. */
static size_t agents_with(const agent_list *a, int bit, hone_star_agent *out) {
    size_t n = 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->roles[i] & bit && !(a->roles[i] & 4)) out[n++] = a->agents[i];
    return n;
}

static size_t index_of(const hone_star_agent *list, size_t n, const char *name, size_t len) {
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i].name) == len && !strncmp(list[i].name, name, len)) return i;
    return n;
}

/* star_base_pairs "rewriter/responder" → pair indices. */
static hone_status base_pairs(const hone_settings *s, const hone_star_options *o, size_t **out, size_t *n_out) {
    const char *const *items;
    const size_t n = hone_settings_list(s, "star_base_pairs", &items);
    *out = calloc(n + 1, sizeof **out);
    *n_out = n;
    if (!*out) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *slash = strchr(items[i], '/');
        const size_t j = slash ? index_of(o->rewriters, o->n_rewriters, items[i], (size_t)(slash - items[i])) : 0;
        const size_t k = slash ? index_of(o->responders, o->n_responders, slash + 1, strlen(slash + 1)) : 0;
        if (!slash || j == o->n_rewriters || k == o->n_responders)
            return hone_errorf(HONE_ERR_INVALID,
                               "star_base_pairs: '%s' is not REWRITER/RESPONDER with the names of a "
                               "rewriter and a responder of star_agents",
                               items[i]);
        (*out)[i] = j * o->n_responders + k;
    }
    return HONE_OK;
}

static void show_seed(const hone_star_summary *sum, const double *p, size_t n_pairs, void *user) {
    (void)user;
    double top = 0;
    for (size_t k = 0; k < n_pairs; k++) top = p[k] > top ? p[k] : top;
    fprintf(stderr, "star-agents: seed %zu done (%zu improved so far; largest pair probability %.4f)\n",
            sum->resumed + sum->done, sum->improved, top);
}

int cli_select_star(const hone_settings *s, hone_model *m, const hone_score_file_options *so, const char *log_path) {
    agent_list agents = {0};
    hone_model *large = NULL;
    hone_tokenizer *large_tok = NULL;
    hone_chat_template *large_tmpl = NULL;
    size_t *base = NULL;
    hone_star_agent *rewriters = NULL, *responders = NULL;
    hone_star_options o = {.data_path = so->data_path,
                           .dataset = so->dataset,
                           .small = m,
                           .ifd_small = so->ifd,
                           .start_small = so->start_id,
                           .sequence_len = so->sequence_len,
                           .micro_batch_size = so->micro_batch_size,
                           .beta = hone_settings_float(s, "star_beta"),
                           .seed = (uint64_t)hone_settings_int(s, "seed"),
                           .log_path = log_path,
                           .output_path = hone_settings_str(s, "output")};
    int rc = 1;
    if (hone_settings_int(s, "star_pairs_per_seed") < 0 || hone_settings_int(s, "star_memory_pairs") < 0) {
        fprintf(stderr, "hone select: error: --star-pairs-per-seed and --star-memory-pairs must be >= 0\n");
        return 1;
    }
    o.m = (size_t)hone_settings_int(s, "star_pairs_per_seed");
    o.l = (size_t)hone_settings_int(s, "star_memory_pairs");
    const char *large_dir = hone_settings_str(s, "large_model"), *judge_name = hone_settings_str(s, "star_judge");
    if (hone_settings_require(s, "large_model") != HONE_OK || hone_settings_require(s, "star_agents") != HONE_OK ||
        hone_settings_require(s, "star_judge") != HONE_OK || open_agents(s, &agents) != HONE_OK ||
        hone_model_load(&large, large_dir) != HONE_OK || hone_model_tokenizer(&large_tok, large, NULL) != HONE_OK)
        goto fail;
    if (!large_tok) {
        hone_errorf(HONE_ERR_INVALID, "%s has no tokenizer.json: the large model needs its own", large_dir);
        goto fail;
    }
    if (so->ifd.style == HONE_PROMPT_CHAT &&
        hone_chat_template_pick(&large_tmpl, hone_settings_str(s, "chat_template"), large_dir) != HONE_OK)
        goto fail;
    o.ifd_large = (hone_ifd_options){.tokenizer = large_tok, .style = so->ifd.style, .chat_template = large_tmpl};
    o.start_large = hone_ifd_start_token(large_tok, large);
    o.large = large;
    rewriters = calloc(agents.n + 1, sizeof *rewriters);
    responders = calloc(agents.n + 1, sizeof *responders);
    if (!rewriters || !responders) {
        hone_errorf(HONE_ERR_NOMEM, "out of memory");
        goto fail;
    }
    o.rewriters = rewriters;
    o.responders = responders;
    o.n_rewriters = agents_with(&agents, 1, rewriters);
    o.n_responders = agents_with(&agents, 2, responders);
    if (!strcmp(judge_name, "contains") || !strcmp(judge_name, "equals")) {
        o.judge_kind = *judge_name == 'c' ? HONE_STAR_JUDGE_CONTAINS : HONE_STAR_JUDGE_EQUALS;
    } else {
        const size_t j = index_of(agents.agents, agents.n, judge_name, strlen(judge_name));
        if (j == agents.n) {
            hone_errorf(HONE_ERR_INVALID, "--star-judge '%s' is neither contains, equals nor the name of an agent",
                        judge_name);
            goto fail;
        }
        o.judge = &agents.agents[j];
    }
    if (base_pairs(s, &o, &base, &o.n_base) != HONE_OK) goto fail;
    o.base_pairs = base;
    hone_star_summary sum;
    if (hone_star_run(&o, show_seed, NULL, &sum) != HONE_OK) goto fail;
    fprintf(stderr,
            "%s: %zu seeds (%zu resumed), %zu replaced by a candidate, %zu kept as they were; %zu teacher requests "
            "failed, %zu judge verdicts unreadable (each decision and p in %s) in %.1f s\n",
            o.output_path, sum.seeds, sum.resumed, sum.improved, sum.seeds - sum.improved, sum.failed_requests,
            sum.unparsed_verdicts, log_path, sum.seconds);
    if (hone_settings_bool(s, "json"))
        printf("{\"seeds\": %zu, \"resumed\": %zu, \"improved\": %zu, \"failed_requests\": %zu, "
               "\"unparsed_verdicts\": %zu, \"seconds\": %.3f}\n",
               sum.seeds, sum.resumed, sum.improved, sum.failed_requests, sum.unparsed_verdicts, sum.seconds);
    if (hone_settings_is_set(s, "report")) {
        if (hone_star_report_write(hone_settings_str(s, "report"), log_path) != HONE_OK) goto fail;
        fprintf(stderr, "report: %s\n", hone_settings_str(s, "report"));
    }
    rc = 0;
    goto done;
fail:
    cli_fail("select");
done:
    free(base);
    free(rewriters);
    free(responders);
    agents_free(&agents);
    hone_chat_template_free(large_tmpl);
    hone_tokenizer_free(large_tok);
    hone_model_free(large);
    return rc;
}
