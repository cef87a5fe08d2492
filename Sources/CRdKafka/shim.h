#ifndef CRDKAFKA_SHIM_H
#define CRDKAFKA_SHIM_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/// Produces one message. rd_kafka_producev is variadic and cannot be called from Swift.
/// On success the headers belong to librdkafka; on failure they still belong to the caller.
/// Returns an error object (the caller destroys it) or NULL.
static inline rd_kafka_error_t *CRdKafka_produce(rd_kafka_t *rk, const char *topic,
                                                 int32_t partition, const void *key,
                                                 size_t key_len, const void *value,
                                                 size_t value_len, rd_kafka_headers_t *headers,
                                                 void *opaque) {
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
        RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_HEADERS(headers),
        RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return NULL;
    return rd_kafka_error_new(err, "%s", rd_kafka_err2str(err));
}

#endif
