/* A minimal client of llama.cpp's library (libllama from the bench build of the
 * llama-cpp-python sdist) for make_gemma3_270m_reference.py: tokenization and greedy
 * (argmax) continuation, nothing else, so the reference needs only libllama, not the server.
 *
 *   llama_cpp_greedy MODEL tokenize ADD_SPECIAL   < text        -> ids, one line
 *   llama_cpp_greedy MODEL generate N             < prompt ids  -> generated ids, one line
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-backend.h"
#include "llama.h"

static void quiet(enum ggml_log_level level, const char* text, void* data) {
  (void)level;
  (void)text;
  (void)data;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s MODEL tokenize ADD_SPECIAL | MODEL generate N\n", argv[0]);
    return 2;
  }
  llama_log_set(quiet, NULL);
  llama_backend_init();
  ggml_backend_load_all();  /* the CPU backend is a library of its own in this build */
  struct llama_model_params mp = llama_model_default_params();
  /* No extra buffer types (weight repacking, AMX): this machine advertises AMX tiles that a
     process may not use, where llama.cpp's AMX kernels die with SIGILL. */
  mp.use_extra_bufts = false;
  struct llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) return 1;
  const struct llama_vocab* vocab = llama_model_get_vocab(model);
  static char input[1 << 20];
  size_t len = fread(input, 1, sizeof(input) - 1, stdin);
  input[len] = 0;
  if (strcmp(argv[2], "tokenize") == 0) {
    llama_token ids[4096];
    int n = llama_tokenize(vocab, input, (int32_t)len, ids, 4096, atoi(argv[3]) != 0, false);
    if (n < 0) return 1;
    for (int i = 0; i < n; ++i) printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
    return 0;
  }
  llama_token prompt[4096];
  int n_prompt = 0;
  for (char* tok = strtok(input, " \n"); tok && n_prompt < 4096; tok = strtok(NULL, " \n")) {
    prompt[n_prompt++] = atoi(tok);
  }
  const int n_predict = atoi(argv[3]);
  struct llama_context_params cp = llama_context_default_params();
  cp.n_ctx = (uint32_t)(n_prompt + n_predict + 8);
  cp.n_batch = cp.n_ctx;
  cp.n_threads = cp.n_threads_batch = 2;
  struct llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) return 1;
  const int n_vocab = llama_vocab_n_tokens(vocab);
  struct llama_batch batch = llama_batch_get_one(prompt, n_prompt);
  llama_token next;
  for (int i = 0; i < n_predict; ++i) {
    if (llama_decode(ctx, batch) != 0) return 1;
    const float* logits = llama_get_logits_ith(ctx, -1);
    next = 0;
    for (int t = 1; t < n_vocab; ++t) {
      if (logits[t] > logits[next]) next = t;
    }
    if (getenv("LLAMA_REF_MARGINS")) { /* runner-up and its logit gap, for near-tie checks */
      llama_token second = next == 0 ? 1 : 0;
      for (int t = 0; t < n_vocab; ++t) {
        if (t != next && logits[t] > logits[second]) second = t;
      }
      fprintf(stderr, "token %d: %d (%.4f), runner-up %d (%.4f)\n", i, next, logits[next], second,
              logits[second]);
    }
    printf(i ? " %d" : "%d", next);
    if (llama_vocab_is_eog(vocab, next)) break;
    batch = llama_batch_get_one(&next, 1);
  }
  printf("\n");
  llama_free(ctx);
  llama_model_free(model);
  return 0;
}
