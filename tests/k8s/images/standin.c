/* An HTTP responder for the full cluster's infrastructure check: until `kinfer serve`
 * exists, it lets tests/k8s/full_cluster.sh show that the kubelet's HTTP probes run, that a
 * Ready pod's endpoint is programmed by kube-proxy, and that a request reaches it through a
 * Service. It answers GET /health, /ready and /v1/models with 200; anything else with 404.
 * It is not kinfer, and the check says so. */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void on_stop(int sig) { _exit(128 + sig); }

int main(int argc, char** argv) {
  int port = argc > 1 ? atoi(argv[1]) : 8000;
  signal(SIGTERM, on_stop);
  signal(SIGPIPE, SIG_IGN);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (s < 0 || bind(s, (struct sockaddr*)&addr, sizeof addr) < 0 || listen(s, 16) < 0) {
    perror("standin: listen");
    return 1;
  }
  fprintf(stderr, "standin: listening on :%d\n", port);
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    char req[2048] = {0};
    ssize_t n = read(c, req, sizeof req - 1);
    const char* body = NULL;
    if (n > 0 && (strncmp(req, "GET /health ", 12) == 0 || strncmp(req, "GET /ready ", 11) == 0)) {
      body = "ok\n";
    } else if (n > 0 && strncmp(req, "GET /v1/models ", 15) == 0) {
      body = "{\"object\": \"list\", \"data\": [{\"id\": \"standin\", \"object\": \"model\"}]}\n";
    }
    char resp[512];
    int len = snprintf(resp, sizeof resp,
                       "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\n\r\n%s",
                       body ? "200 OK" : "404 Not Found", body ? strlen(body) : 0, body ? body : "");
    if (write(c, resp, (size_t)len) < 0) perror("standin: write");
    close(c);
  }
}
