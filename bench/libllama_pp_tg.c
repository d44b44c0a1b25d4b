/* llama-bench's pp/tg measurement through libllama directly, for when the llama-bench tool is
 * not built: one llama_decode of P prompt tokens (n_batch = n_ubatch = P), then N single-token
 * decodes (argmax feedback), wall time of each; prints one JSON line. Weight repacking (extra
 * buffer types) stays on, as in llama-bench. Used for the mixture-of-experts row (bench/README).
 *
 *   libllama_pp_tg MODEL THREADS P N
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ggml-backend.h"
#include "llama.h"

static void quiet(enum ggml_log_level level, const char* text, void* data) {
  (void)level;
  (void)text;
  (void)data;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s MODEL THREADS P N\n", argv[0]);
    return 2;
  }
  const int threads = atoi(argv[2]), P = atoi(argv[3]), N = atoi(argv[4]);
  llama_log_set(quiet, NULL);
  llama_backend_init();
  ggml_backend_load_all();
  struct llama_model* model = llama_model_load_from_file(argv[1], llama_model_default_params());
  if (!model) return 1;
  const struct llama_vocab* vocab = llama_model_get_vocab(model);
  const int n_vocab = llama_vocab_n_tokens(vocab);
  struct llama_context_params cp = llama_context_default_params();
  cp.n_ctx = (uint32_t)(P + N + 16);
  cp.n_batch = cp.n_ubatch = (uint32_t)P;
  cp.n_threads = cp.n_threads_batch = threads;
  struct llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) return 1;
  llama_token* prompt = malloc(sizeof(llama_token) * (size_t)P);
  for (int i = 0; i < P; ++i) prompt[i] = (llama_token)(1000 + (i * 7919) % 20000);
  /* warm-up, as llama-bench does, then the measured run on a fresh cache */
  llama_token warm = prompt[0];
  if (llama_decode(ctx, llama_batch_get_one(&warm, 1)) != 0) return 1;
  llama_memory_clear(llama_get_memory(ctx), true);
  double t0 = now();
  if (llama_decode(ctx, llama_batch_get_one(prompt, P)) != 0) return 1;
  const double pp = P / (now() - t0);
  llama_token next = 0;
  t0 = now();
  for (int i = 0; i < N; ++i) {
    const float* logits = llama_get_logits_ith(ctx, -1);
    next = 0;
    for (int t = 1; t < n_vocab; ++t) {
      if (logits[t] > logits[next]) next = t;
    }
    if (llama_decode(ctx, llama_batch_get_one(&next, 1)) != 0) return 1;
  }
  const double tg = N / (now() - t0);
  printf("{\"prefill_tps\": %.3f, \"decode_tps\": %.3f}\n", pp, tg);
  llama_free(ctx);
  llama_model_free(model);
  return 0;
}
