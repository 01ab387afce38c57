/* What the HTTP function targets share: the Lambda Invoke path added to a bare base URL, the Host
 * header (both parsed with libcurl's URL API, once per target), and header lines read.
 * Owns nothing; must never open a connection. */
#include "connectors/http_shared.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/mem.h"

#define INVOKE_PATH_FMT "/2015-03-31/functions/%s/invocations"

char *weir_http_function_url(const struct weir_function_cfg *fc, const char *raw,
                             const char *log_url, struct weir_err *err)
{
    char *out = NULL, *path = NULL, *full = NULL;
    CURLU *u = curl_url();
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, raw, 0);
    if (uc != CURLUE_OK) {
        weir_err_set(err, "function %s: url %s: %s", fc->name, log_url, curl_url_strerror(uc));
        goto done;
    }
    uc = curl_url_get(u, CURLUPART_PATH, &path, 0);
    if (!fc->raw_url && (uc != CURLUE_OK || path[0] == '\0' || strcmp(path, "/") == 0)) {
        char invoke[512];
        snprintf(invoke, sizeof(invoke), INVOKE_PATH_FMT, fc->name);
        uc = curl_url_set(u, CURLUPART_PATH, invoke, CURLU_URLENCODE);
        if (uc != CURLUE_OK) {
            weir_err_set(err, "function %s: url %s: %s", fc->name, log_url, curl_url_strerror(uc));
            goto done;
        }
    }
    uc = curl_url_get(u, CURLUPART_URL, &full, 0);
    if (uc != CURLUE_OK) {
        weir_err_set(err, "function %s: url %s: %s", fc->name, log_url, curl_url_strerror(uc));
        goto done;
    }
    out = weir_strdup(full);

done:
    curl_free(full);
    curl_free(path);
    curl_url_cleanup(u);
    return out;
}

char *weir_http_host_header(const char *url)
{
    char *scheme = NULL, *host = NULL, *port = NULL, *out = NULL;
    CURLU *u = curl_url();
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        goto done;
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    bool default_port = !port || (!strcasecmp(scheme, "http") && !strcmp(port, "80")) ||
                        (!strcasecmp(scheme, "https") && !strcmp(port, "443"));
    struct weir_buf b;
    weir_buf_init(&b);
    weir_buf_printf(&b, "Host: %s%s%s", host, default_port ? "" : ":", default_port ? "" : port);
    out = weir_buf_take(&b, NULL);
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return out;
}

bool weir_http_header_is(const char *line, size_t n, const char *name, const char **value,
                         size_t *value_len)
{
    size_t k = strlen(name);
    if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
        return false;
    *value = line + k + 1;
    *value_len = n - k - 1;
    return true;
}

void weir_http_header_value(const char *v, size_t n, char *out, size_t out_len)
{
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n >= out_len)
        n = out_len - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}
