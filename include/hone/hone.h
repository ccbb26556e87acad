/* hone.h — the whole public API of libhone.
 *
 * Load a Hugging Face checkpoint, train it for a few steps on a token stream and save it:
 *
 *     #include <hone/hone.h>
 *
 *     hone_model *m;
 *     hone_token_stream data;
 *     if (hone_model_load(&m, "models/gpt2") != HONE_OK ||
 *         hone_tokens_load(&data, "train.bin", hone_model_get_config(m)->vocab_size) != HONE_OK) {
 *         fprintf(stderr, "error: %s\n", hone_error());
 *         return 1;
 *     }
 *     hone_train_config tc;
 *     hone_train_config_defaults(&tc);
 *     tc.sequence_len = 128;
 *     tc.max_steps = 100;
 *     tc.output_dir = "out";              // out/metrics.jsonl, out/config.json, out/model.safetensors
 *     hone_train_summary summary;
 *     hone_status st = hone_pretrain(m, &data, &tc, NULL, NULL, &summary);
 *
 * Every fallible function returns hone_status and leaves a message for hone_error() (see hone/base.h).
 */
#ifndef HONE_H
#define HONE_H

#include "hone/base.h"
#include "hone/chat_template.h"
#include "hone/conversation.h"
#include "hone/data.h"
#include "hone/dataset.h"
#include "hone/eval.h"
#include "hone/merge.h"
#include "hone/mixture.h"
#include "hone/model.h"
#include "hone/optim.h"
#include "hone/pack.h"
#include "hone/peft.h"
#include "hone/render.h"
#include "hone/safetensors.h"
#include "hone/select.h"
#include "hone/settings.h"
#include "hone/star_agents.h"
#include "hone/tasks.h"
#include "hone/teacher.h"
#include "hone/tensor.h"
#include "hone/tokenizer.h"
#include "hone/train.h"

#endif
