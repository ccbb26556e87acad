/* Selective Reflection-Tuning's rule (ALGORITHMS.md §2) on hand-made scores: which version wins and why, the
 * fallbacks for missing versions, and the configurable gates; the report of a run's files. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hone/select.h"
#include "testutil.h"

/* Scores in version order orig, Q, A, QA. */
static hone_reflect_scores scores(double i0, double i1, double i2, double i3, double r0, double r1, double r2,
                                  double r3) {
    return (hone_reflect_scores){{i0, i1, i2, i3}, {r0, r1, r2, r3}};
}

static void expect(hone_reflect_scores s, double max_ifd, double max_rifd, hone_reflect_version from,
                   hone_reflect_version version, hone_reflect_reason reason) {
    hone_reflect_decision d = hone_reflect_decide(&s, max_ifd, max_rifd);
    assert_string_equal(hone_reflect_version_name(d.instruction_from), hone_reflect_version_name(from));
    assert_string_equal(hone_reflect_version_name(d.version), hone_reflect_version_name(version));
    assert_string_equal(hone_reflect_reason_name(d.reason), hone_reflect_reason_name(reason));
}

static void test_rule(void **state) {
    (void)state;
    const hone_reflect_version O = HONE_REFLECT_ORIG, Q = HONE_REFLECT_Q, A = HONE_REFLECT_A, QA = HONE_REFLECT_QA;
    /* The reflected instruction is harder (higher IFD): QA competes with Q on r-IFD. */
    expect(scores(0.5, 0.7, 0.6, 0.8, 0.9, 0.8, 0.1, 0.6), 1, 1, Q, QA, HONE_REFLECT_KEPT);
    expect(scores(0.5, 0.7, 0.6, 0.8, 0.9, 0.6, 0.1, 0.6), 1, 1, Q, QA, HONE_REFLECT_NOT_IMPROVED); /* tie */
    expect(scores(0.5, 0.7, 0.6, 0.8, 0.9, 0.5, 0.1, 0.6), 1, 1, Q, QA, HONE_REFLECT_NOT_IMPROVED);
    /* Not harder (equal counts as not harder): A competes with the original; QA's scores do not matter. */
    expect(scores(0.5, 0.5, 0.6, 0.1, 0.9, 0.8, 0.7, 0.1), 1, 1, O, A, HONE_REFLECT_KEPT);
    expect(scores(0.5, 0.4, 0.6, 0.1, 0.7, 0.8, 0.9, 0.1), 1, 1, O, A, HONE_REFLECT_NOT_IMPROVED);
    /* Missing versions: no Q leaves the original instruction; a missing candidate drops the example. */
    expect(scores(0.5, NAN, 0.6, NAN, 0.9, NAN, 0.7, NAN), 1, 1, O, A, HONE_REFLECT_KEPT);
    expect(scores(0.5, 0.4, NAN, 0.6, 0.9, 0.5, NAN, 0.1), 1, 1, O, A, HONE_REFLECT_MISSING);
    expect(scores(0.5, 0.7, 0.6, NAN, 0.9, 0.5, 0.1, NAN), 1, 1, Q, QA, HONE_REFLECT_MISSING);
    /* An unscored original: nothing compares better than it, so the example is dropped. */
    expect(scores(NAN, 0.7, 0.6, 0.8, NAN, 0.5, 0.1, 0.4), 1, 1, O, A, HONE_REFLECT_NOT_IMPROVED);
    /* The gates on the winner, each switchable off with 0. */
    expect(scores(0.5, 0.4, 1.2, 0.1, 0.9, 0.5, 0.7, 0.1), 1, 1, O, A, HONE_REFLECT_IFD_GATE);
    expect(scores(0.5, 0.4, 1.2, 0.1, 0.9, 0.5, 0.7, 0.1), 0, 1, O, A, HONE_REFLECT_KEPT);
    expect(scores(0.5, 0.4, 1.0, 0.1, 0.9, 0.5, 0.7, 0.1), 1, 1, O, A, HONE_REFLECT_IFD_GATE); /* ifd < 1 strictly */
    expect(scores(0.5, 0.4, 0.6, 0.1, 1.5, 0.5, 1.1, 0.1), 1, 1, O, A, HONE_REFLECT_RIFD_GATE);
    expect(scores(0.5, 0.4, 0.6, 0.1, 1.5, 0.5, 1.1, 0.1), 1, 1.2, O, A, HONE_REFLECT_KEPT);
    expect(scores(0.5, 0.4, 0.6, 0.1, 1.5, 0.5, 1.1, 0.1), 1, 0, O, A, HONE_REFLECT_KEPT);
}

static void test_names_and_prompts(void **state) {
    (void)state;
    assert_string_equal(hone_reflect_version_name(HONE_REFLECT_QA), "QA");
    assert_string_equal(hone_reflect_reason_name(HONE_REFLECT_RIFD_GATE), "rifd_gate");
    /* The default prompts carry the placeholders and ask for the markers the extraction looks for. */
    const char *ins = hone_reflect_default_prompt(0), *res = hone_reflect_default_prompt(1);
    assert_non_null(strstr(ins, "{instruction}"));
    assert_non_null(strstr(ins, "{answer}"));
    assert_non_null(strstr(ins, "[New Instruction]"));
    assert_non_null(strstr(ins, "[New Answer]"));
    assert_non_null(strstr(res, "[Better Answer]"));
    assert_null(strstr(res, "[New Instruction]"));
}

/* The page's text (free()). */
static char *page_of(const char *path) {
    char *text;
    size_t n;
    TEST_OK(hone_file_read(path, &text, &n));
    return text;
}

static void expect_in(const char *page, const char *const *needles, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (!strstr(page, needles[k])) fail_msg("the page lacks %s", needles[k]);
}

static size_t occurrences(const char *text, const char *needle) {
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* The report of a run that has only a journal (killed before the scoring: the last line torn), of a finished run's
 * hand-made decisions, and the errors for files that are not a reflection run's. */
static void test_report(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    const char *journal = "{\"index\": 0, \"request\": \"instruction\", \"key\": \"k\", \"reply\": \"r\"}\n"
                          "{\"index\": 1, \"request\": \"instruction\", \"key\": \"k\", \"reply\": \"r\"}\n"
                          "{\"index\": 0, \"request\": \"response\", \"key\": \"k\", \"reply\": \"r\"}\n"
                          "{\"index\": 1, \"request\": \"resp";
    /* example 0: Q wins step 1, QA lowers rifd and is kept; example 1: the teacher failed Q, A has no rifd gain */
    const char *decisions =
        "{\"index\": 0, \"selected\": true, \"version\": \"QA\", \"reason\": \"kept\", \"instruction_from\": \"Q\", "
        "\"scores\": {\"orig\": {\"ifd\": 0.5, \"rifd\": 0.9}, \"Q\": {\"ifd\": 0.7, \"rifd\": 0.8}, "
        "\"A\": {\"ifd\": 0.6, \"rifd\": 0.95}, \"QA\": {\"ifd\": 0.8, \"rifd\": 0.6}}, \"missing\": {}, "
        "\"versions\": {\"orig\": {\"instruction\": \"Name a <b>colour</b>\", \"output\": \"blue\"}, "
        "\"Q\": {\"instruction\": \"q\", \"output\": \"o\"}, "
        "\"A\": {\"instruction\": \"Name a <b>colour</b>\", \"output\": \"a\"}, "
        "\"QA\": {\"instruction\": \"q\", \"output\": \"qa\"}}}\n"
        "{\"index\": 1, \"selected\": false, \"version\": \"A\", \"reason\": \"not_improved\", "
        "\"instruction_from\": \"orig\", \"scores\": {\"orig\": {\"ifd\": 0.5, \"rifd\": 0.7}, "
        "\"Q\": {\"ifd\": null, \"rifd\": null}, \"A\": {\"ifd\": 0.6, \"rifd\": 0.8}, "
        "\"QA\": {\"ifd\": null, \"rifd\": null}}, "
        "\"missing\": {\"Q\": \"teacher failed: HTTP 500\", \"QA\": \"Q is missing\"}, "
        "\"versions\": {\"orig\": {\"instruction\": \"i\", \"output\": \"o\"}, "
        "\"A\": {\"instruction\": \"i\", \"output\": \"a\"}}}\n";
    const char *ifd_decisions = "{\"index\": 0, \"selected\": true, \"reason\": \"kept\", \"ifd\": 0.5}\n";
    char *jp = test_write_file(dir, "kept.teacher.jsonl", journal, strlen(journal));
    char *html = test_write_file(dir, "r.html", "", 0);
    char *none = hone_path_join(dir, "kept.decisions.jsonl");
    TEST_OK(hone_reflect_report_write(html, none, jp, 10));
    char *page = page_of(html);
    const char *const partial[] = {"No decisions yet", "<tr><th>journal replies</th><td>3</td></tr>",
                                   "<tr><th>instruction</th><td>2</td></tr>", "<tr><th>response</th><td>1</td></tr>"};
    expect_in(page, partial, sizeof partial / sizeof *partial);
    assert_null(strstr(page, "<svg"));
    free(page);

    char *dp = test_write_file(dir, "kept.decisions.jsonl", decisions, strlen(decisions));
    TEST_OK(hone_reflect_report_write(html, dp, jp, 10));
    page = page_of(html);
    /* Q, A, QA: proposed, teacher failed, no markers, won its comparison, kept */
    const char *const finished[] = {"<tr><th>examples</th><td>2</td></tr>", "<tr><th>kept</th><td>1</td></tr>",
                                    "<tr><th>not_improved</th><td>1</td></tr>",
                                    "<tr><th>teacher failures</th><td>1</td></tr>",
                                    "<tr><th>Q</th><td>1</td><td>1</td><td>0</td><td>1</td><td>1</td></tr>",
                                    "<tr><th>A</th><td>2</td><td>0</td><td>0</td><td>0</td><td>0</td></tr>",
                                    "<tr><th>QA</th><td>1</td><td>0</td><td>0</td><td>1</td><td>1</td></tr>",
                                    "Name a &lt;b&gt;colour&lt;/b&gt;", /* escaped */
                                    "<b>kept QA</b>", "<b>dropped: not_improved</b>"};
    expect_in(page, finished, sizeof finished / sizeof *finished);
    assert_int_equal(occurrences(page, "<svg"), 4);
    assert_null(strstr(page, "<b>colour"));
    free(page);
    /* one row shown, the other counted */
    TEST_OK(hone_reflect_report_write(html, dp, jp, 1));
    page = page_of(html);
    assert_int_equal(occurrences(page, "<b>kept QA</b>"), 1);
    assert_null(strstr(page, "<b>dropped"));
    assert_non_null(strstr(page, "&hellip; 1 more in "));
    free(page);

    char *other = test_write_file(dir, "select.decisions.jsonl", ifd_decisions, strlen(ifd_decisions));
    TEST_FAILS_WITH(hone_reflect_report_write(html, other, jp, 10), "select.decisions.jsonl:1: not a reflection "
                                                                    "decisions file");
    char *whole = test_write_file(dir, "whole.teacher.jsonl", journal, (size_t)(strrchr(journal, '\n') - journal + 1));
    TEST_FAILS_WITH(hone_reflect_report_write(html, whole, none, 10), "whole.teacher.jsonl:1: not a reflection "
                                                                      "decisions");
    /* a line that is not JSON before the last is damage, not a torn end */
    const char *bad_journal = "{\"index\": 0, \"request\": \"instr\n{\"index\": 0, \"request\": \"response\", "
                              "\"key\": \"k\", \"reply\": \"r\"}\n";
    char *bj = test_write_file(dir, "bad.teacher.jsonl", bad_journal, strlen(bad_journal));
    TEST_FAILS_WITH(hone_reflect_report_write(html, dp, bj, 10), "bad.teacher.jsonl:1: not a reflection journal");
    TEST_FAILS_WITH(hone_reflect_report_write(html, dp, other, 10), "select.decisions.jsonl:1: not a reflection "
                                                                    "journal");
    char *none2 = hone_path_join(dir, "nothing.jsonl");
    TEST_FAILS_WITH(hone_reflect_report_write(html, none2, none2, 10), "nothing to report");
    free(jp);
    free(html);
    free(none);
    free(dp);
    free(other);
    free(bj);
    free(whole);
    free(none2);
    test_tmpdir_remove(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_rule), cmocka_unit_test(test_names_and_prompts),
                                       cmocka_unit_test(test_report)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
