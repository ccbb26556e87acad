/* Selective Reflection-Tuning: hone's reflection prompts and the student's rule over the four versions of an
 * example (ALGORITHMS.md §2). The run over a dataset file is reflection_file.c. */
#include <math.h>

#include "hone/select.h"

const char *hone_reflect_version_name(hone_reflect_version v) {
    static const char *const names[HONE_REFLECT_VERSIONS] = {"orig", "Q", "A", "QA"};
    return (unsigned)v < HONE_REFLECT_VERSIONS ? names[v] : "?";
}

const char *hone_reflect_reason_name(hone_reflect_reason r) {
    static const char *const names[HONE_REFLECT_REASON_COUNT] = {"kept", "missing", "not_improved", "ifd_gate",
                                                                 "rifd_gate"};
    return (unsigned)r < HONE_REFLECT_REASON_COUNT ? names[r] : "?";
}

/* The criteria follow the paper: an instruction is judged on its complexity, the detail it asks for, the knowledge
 * it needs, its ambiguity and the reasoning it calls for; an answer on helpfulness, relevance, accuracy and detail.
 * The markers are the released code's, so that replies of teachers prompted elsewhere parse the same. */
static const char INSTRUCTION_PROMPT[] =
    "You are an expert editor of instruction-tuning data. Here is an instruction given to an AI assistant and the "
    "answer it received.\n\n"
    "[Instruction]\n{instruction}\n\n[Answer]\n{answer}\n\n"
    "First critique the instruction on five criteria: its complexity (is it too easy to teach anything?), the level "
    "of detail it asks for, the knowledge it requires, its ambiguity (could it be read in several ways?) and whether "
    "it calls for reasoning. Then write a new instruction that fixes the weaknesses you found while keeping the "
    "topic and the intent, and a new answer to that new instruction that is correct, complete and well reasoned.\n\n"
    "Write the new instruction between [New Instruction] and [End], and the new answer between [New Answer] and "
    "[End], in exactly this form:\n[New Instruction] the new instruction [End]\n[New Answer] the new answer [End]\n";

static const char RESPONSE_PROMPT[] =
    "You are an expert editor of instruction-tuning data. Here is an instruction given to an AI assistant and the "
    "answer it received.\n\n"
    "[Instruction]\n{instruction}\n\n[Answer]\n{answer}\n\n"
    "First critique the answer on its helpfulness, relevance, accuracy and level of detail, and on whether it shows "
    "the reasoning and the knowledge the instruction calls for. Then write a better answer to the same instruction "
    "that fixes the weaknesses you found.\n\n"
    "Write the better answer between [Better Answer] and [End], in exactly this form:\n"
    "[Better Answer] the better answer [End]\n";

const char *hone_reflect_default_prompt(int response) {
    return response ? RESPONSE_PROMPT : INSTRUCTION_PROMPT;
}

/* Comparisons with a NaN (a missing or unscored version) are false, which is the fallback the rule wants. */
hone_reflect_decision hone_reflect_decide(const hone_reflect_scores *s, double max_ifd, double max_rifd) {
    hone_reflect_decision d = {.instruction_from = HONE_REFLECT_ORIG, .version = HONE_REFLECT_A};
    if (s->ifd[HONE_REFLECT_Q] > s->ifd[HONE_REFLECT_ORIG]) {
        d.instruction_from = HONE_REFLECT_Q;
        d.version = HONE_REFLECT_QA;
    }
    const double base_rifd = s->rifd[d.instruction_from], rifd = s->rifd[d.version], ifd = s->ifd[d.version];
    if (isnan(rifd) && isnan(ifd)) d.reason = HONE_REFLECT_MISSING;
    else if (!(rifd < base_rifd)) d.reason = HONE_REFLECT_NOT_IMPROVED;
    else if (max_ifd > 0 && !(ifd < max_ifd)) d.reason = HONE_REFLECT_IFD_GATE;
    else if (max_rifd > 0 && !(rifd < max_rifd)) d.reason = HONE_REFLECT_RIFD_GATE;
    else d.reason = HONE_REFLECT_KEPT;
    return d;
}
