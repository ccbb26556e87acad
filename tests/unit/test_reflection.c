/* Selective Reflection-Tuning's rule (ALGORITHMS.md §2) on hand-made scores: which version wins and why, the
 * fallbacks for missing versions, and the configurable gates. */
#include <math.h>
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

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_rule), cmocka_unit_test(test_names_and_prompts)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
