/* hone select --method reflection — Selective Reflection-Tuning: a teacher (a hone model or an OpenAI-compatible
 * endpoint) rewrites every example, the student keeps the version the rule picks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hone/teacher.h"
#include "select_reflection.h"

/* A prompt file's text (free()), or NULL with the error printed; *text stays NULL when the key is not set. */
static int read_prompt(const hone_settings *s, const char *key, char **text) {
    *text = NULL;
    if (!hone_settings_is_set(s, key)) return 1;
    size_t n;
    if (hone_file_read(hone_settings_str(s, key), text, &n) == HONE_OK) return 1;
    cli_fail("select");
    return 0;
}

int cli_select_reflection(const hone_settings *s, hone_model *m, const hone_score_file_options *o,
                          const char *decisions_path, const char *journal_path) {
    const int64_t retries = hone_settings_int(s, "teacher_retries"), conc = hone_settings_int(s, "teacher_concurrency"),
                  max_tokens = hone_settings_int(s, "teacher_max_tokens");
    const double timeout = hone_settings_float(s, "teacher_timeout");
    const double temperature = hone_settings_float(s, "teacher_temperature");
    if (retries < 0 || conc < 1 || max_tokens < 1 || timeout <= 0 || !(temperature >= 0 && isfinite(temperature))) {
        fprintf(stderr, "hone select: error: need --teacher-retries >= 0, --teacher-concurrency >= 1, "
                        "--teacher-max-tokens >= 1, --teacher-timeout > 0 and a finite --teacher-temperature >= 0\n");
        return 1;
    }
    /* The seed only means something to a model teacher that samples (an endpoint does its own sampling). */
    if (hone_settings_is_set(s, "seed") && (temperature == 0 || !hone_settings_is_set(s, "teacher_model"))) {
        fprintf(stderr, "hone select: error: --seed with --method reflection seeds a teacher model's sampling: it "
                        "needs --teacher-model and --teacher-temperature > 0\n");
        return 1;
    }
    const hone_teacher_options to = {
        .model_dir = hone_settings_str(s, "teacher_model"),
        .chat_template = hone_settings_str(s, "teacher_chat_template"),
        .base_url = hone_settings_str(s, "teacher_url"),
        .model_name = hone_settings_str(s, "teacher_name"),
        .api_key_env = hone_settings_str(s, "teacher_api_key_env"),
        .timeout_seconds = timeout,
        .max_retries = retries ? (int)retries : -1, /* the library's 0 means its default */
        .concurrency = (int)conc,
        .max_tokens = (int)max_tokens,
        .temperature = (float)temperature,
        .seed = (uint64_t)hone_settings_int(s, "seed"),
    };
    char *ins_prompt = NULL, *res_prompt = NULL;
    hone_teacher *teacher = NULL;
    int rc = 1;
    if (!read_prompt(s, "reflection_instruction_prompt", &ins_prompt) ||
        !read_prompt(s, "reflection_response_prompt", &res_prompt))
        goto done;
    if (hone_teacher_open(&teacher, &to) != HONE_OK) {
        cli_fail("select");
        goto done;
    }
    /* The paper's gates: ifd < 1 and r-IFD < 1 unless set otherwise. */
    const hone_reflect_options ro = {
        .data_path = o->data_path,
        .dataset = o->dataset,
        .ifd = o->ifd,
        .sequence_len = o->sequence_len,
        .micro_batch_size = o->micro_batch_size,
        .start_id = o->start_id,
        .teacher = teacher,
        .instruction_prompt = ins_prompt,
        .response_prompt = res_prompt,
        .max_ifd = hone_settings_float(s, "max_ifd"),
        .max_rifd = hone_settings_is_set(s, "max_rifd") ? hone_settings_float(s, "max_rifd") : 1,
        .output_path = hone_settings_str(s, "output"),
        .decisions_path = decisions_path,
        .journal_path = journal_path,
    };
    hone_reflect_summary sum;
    if (hone_reflect_file(m, &ro, &sum) != HONE_OK) {
        cli_fail("select");
        goto done;
    }
    fprintf(stderr,
            "%s: %zu of %zu examples kept (orig %zu, Q %zu, A %zu, QA %zu); dropped: %zu missing, %zu not improved, "
            "%zu ifd gate, %zu rifd gate. Teacher: %zu requests (%zu from the journal %s, %zu failed, %zu replies "
            "without markers); missing versions: Q %zu, A %zu, QA %zu (each decision in %s) in %.1f s\n",
            ro.output_path, sum.by_reason[HONE_REFLECT_KEPT], sum.examples, sum.kept[HONE_REFLECT_ORIG],
            sum.kept[HONE_REFLECT_Q], sum.kept[HONE_REFLECT_A], sum.kept[HONE_REFLECT_QA],
            sum.by_reason[HONE_REFLECT_MISSING], sum.by_reason[HONE_REFLECT_NOT_IMPROVED],
            sum.by_reason[HONE_REFLECT_IFD_GATE], sum.by_reason[HONE_REFLECT_RIFD_GATE], sum.requests, sum.resumed,
            journal_path, sum.failed, sum.no_markers, sum.missing[HONE_REFLECT_Q], sum.missing[HONE_REFLECT_A],
            sum.missing[HONE_REFLECT_QA], decisions_path, sum.seconds);
    /* The report also shows a run whose teacher failed: those versions are missing in its decisions. */
    if (hone_settings_is_set(s, "report")) {
        if (hone_reflect_report_write(hone_settings_str(s, "report"), decisions_path, journal_path, 50) != HONE_OK) {
            cli_fail("select");
            goto done;
        }
        fprintf(stderr, "report: %s\n", hone_settings_str(s, "report"));
    }
    if (sum.failed) {
        fprintf(stderr, "hone select: error: %zu teacher requests failed (see the warnings above): the output treats "
                        "their versions as missing; run the same command again to retry only those\n", sum.failed);
        goto done;
    }
    if (hone_settings_bool(s, "json")) {
        printf("{\"examples\": %zu, \"kept\": %zu, \"requests\": %zu, \"resumed\": %zu, \"failed\": %zu, "
               "\"no_markers\": %zu, \"seconds\": %.3f, \"kept_by_version\": {",
               sum.examples, sum.by_reason[HONE_REFLECT_KEPT], sum.requests, sum.resumed, sum.failed, sum.no_markers,
               sum.seconds);
        for (int v = 0; v < HONE_REFLECT_VERSIONS; v++)
            printf("%s\"%s\": %zu", v ? ", " : "", hone_reflect_version_name((hone_reflect_version)v), sum.kept[v]);
        printf("}, \"by_reason\": {");
        for (int r = 0; r < HONE_REFLECT_REASON_COUNT; r++)
            printf("%s\"%s\": %zu", r ? ", " : "", hone_reflect_reason_name((hone_reflect_reason)r), sum.by_reason[r]);
        printf("}}\n");
    }
    rc = 0;
done:
    hone_teacher_free(teacher);
    free(ins_prompt);
    free(res_prompt);
    return rc;
}
