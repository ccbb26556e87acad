/* hone select --method star-agents (cmd_select_star.c), called by cmd_select.c. */
#ifndef HONE_CLI_SELECT_STAR_H
#define HONE_CLI_SELECT_STAR_H

#include "cli.h"

/* The keys of the method, for cmd_select.c's table (the pair draws also read `seed`, which select takes from the
 * training keys). */
#define CLI_STAR_KEYS                                                                                           \
    {"large_model", HONE_KEY_STRING, NULL, "star-agents: the stronger model of the IFD gap (IFD_small - IFD_large)"}, \
    {"star_agents", HONE_KEY_RECORDS, NULL,                                                                     \
     "star-agents: the agents, each {name, role (rewriter|responder|both|judge), model | url + model_name "    \
     "[+ api_key_env], ...}"},                                                                                  \
    {"star_judge", HONE_KEY_STRING, NULL,                                                                       \
     "star-agents: contains | equals (the seed's answer is the reference) | the name of a judge agent"},       \
    {"star_beta", HONE_KEY_FLOAT, "0.1", "star-agents: p[winning pair] += beta * score, then renormalise"},    \
    {"star_pairs_per_seed", HONE_KEY_INT, "2", "star-agents: pairs drawn by probability per seed (M)"},        \
    {"star_memory_pairs", HONE_KEY_INT, "0",                                                                    \
     "star-agents: pairs that won on the most similar earlier seeds, per seed (l)"},                           \
    {"star_base_pairs", HONE_KEY_LIST, NULL, "star-agents: pairs tried on every seed, as rewriter/responder"}, \
    {"star_log", HONE_KEY_STRING, NULL, "star-agents: the JSONL log (default: OUTPUT.star.jsonl; resumed)"}

/* Runs Star-Agents with the student m and the scoring options o (data, prompt style, sequence_len, ...) that
 * cmd_select prepared. Returns the exit code. */
int cli_select_star(const hone_settings *s, hone_model *m, const hone_score_file_options *o, const char *log_path);

#endif
