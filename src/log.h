/*
 * log.h: one line per event, key=value pairs, to stderr.
 *   log_info("http", "ev=listen addr=%s", addr);
 * prints: ts=2026-11-24T13:00:00.123Z level=info mod=http ev=listen addr=...
 */
#ifndef PUSHGATE_LOG_H
#define PUSHGATE_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
/* "debug", "info", "warn", "error" -> level; -1 when unknown. */
int  log_level_parse(const char *name);
int  log_enabled(enum log_level level);
void log_write(enum log_level level, const char *mod, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_debug(mod, ...) do { if (log_enabled(LOG_DEBUG)) log_write(LOG_DEBUG, mod, __VA_ARGS__); } while (0)
#define log_info(mod, ...)  log_write(LOG_INFO, mod, __VA_ARGS__)
#define log_warn(mod, ...)  log_write(LOG_WARN, mod, __VA_ARGS__)
#define log_error(mod, ...) log_write(LOG_ERROR, mod, __VA_ARGS__)

#endif
