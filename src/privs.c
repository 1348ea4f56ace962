/*
 * privs.c: who pushgated runs as, and which files it trusts.
 *
 * Before anything is served: the configuration file (it holds the carriers'
 * SMPP passwords and the database's credentials) must not be open to other
 * users, and the TLS private keys and the platform push credentials (VAPID
 * key, FCM service account, APNs .p8) not to the group or other users; a file
 * that is refuses the start, naming the file and the chmod that fixes it.
 * After the listeners are bound and the keys loaded: as root, pushgated
 * switches to [server] user (its groups too) and checks that root cannot
 * be taken back; without a user it refuses to run as root unless
 * [server] allow_root says so.  Never called after the loop starts.
 */
#include "privs.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

/* 0 when path (empty: none) has none of the forbidden mode bits; else -1 with err. */
static int private_enough(const char *path, mode_t forbidden, const char *what, const char *fix, char *err,
			  size_t errlen)
{
	struct stat st;
	if (!path || !path[0])
		return 0;
	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	if (st.st_mode & forbidden) {
		snprintf(err, errlen, "%s %s is open to other users (mode %03o): %s", what, path,
			 (unsigned)(st.st_mode & 0777), fix);
		return -1;
	}
	return 0;
}

/* Who pushgated will run as, checked before anything starts. */
static int user_ok(const struct config *cfg, char *err, size_t errlen)
{
	if (geteuid() != 0) {
		if (cfg->run_as[0]) {
			struct passwd *pw = getpwnam(cfg->run_as);
			if (!pw || pw->pw_uid != geteuid()) {
				snprintf(err, errlen, "[server] user = %s, but pushgated is not started as root and "
					 "cannot switch to it", cfg->run_as);
				return -1;
			}
		}
		return 0;
	}
	if (!cfg->run_as[0]) {
		if (cfg->allow_root)
			return 0;
		snprintf(err, errlen, "refusing to run as root: set [server] user = NAME to switch to after binding "
			 "(or allow_root = yes)");
		return -1;
	}
	struct passwd *pw = getpwnam(cfg->run_as);
	if (!pw) {
		snprintf(err, errlen, "[server] user = %s: no such user", cfg->run_as);
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "[server] user = %s is root", cfg->run_as);
		return -1;
	}
	return 0;
}

int privs_check_start(const struct config *cfg, const char *ini_path, char *err, size_t errlen)
{
	if (private_enough(ini_path, S_IRWXO, "the configuration", "chmod o-rwx it", err, errlen) < 0)
		return -1;
	if (private_enough(cfg->tls_key, S_IRWXG | S_IRWXO, "[server] tls_key", "chmod 600 it", err, errlen) < 0)
		return -1;
	if (private_enough(cfg->smpps_tls_key, S_IRWXG | S_IRWXO, "[smpp_server] tls_key", "chmod 600 it", err,
			   errlen) < 0)
		return -1;
	/* the platform push credentials: whoever reads them can push to every device of the app */
	if (private_enough(cfg->webpush_vapid_key, S_IRWXG | S_IRWXO, "[webpush] vapid_key", "chmod 600 it", err,
			   errlen) < 0)
		return -1;
	for (size_t i = 0; i < cfg->n_apps; i++) {
		char what[64];
		const struct app_config *a = &cfg->apps[i];
		int fcm = strcmp(a->kind, "fcm") == 0;
		snprintf(what, sizeof(what), "[%s %s] %s", a->kind, a->name, fcm ? "credentials" : "key_file");
		if (private_enough(fcm ? a->credentials : a->key_file, S_IRWXG | S_IRWXO, what, "chmod 600 it", err,
				   errlen) < 0)
			return -1;
	}
	return user_ok(cfg, err, errlen);
}

int privs_drop(const struct config *cfg, char *err, size_t errlen)
{
	if (geteuid() != 0 || !cfg->run_as[0])
		return 0;   /* privs_check_start allowed it */
	struct passwd *pw = getpwnam(cfg->run_as);
	if (!pw) {
		snprintf(err, errlen, "[server] user = %s: no such user", cfg->run_as);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		snprintf(err, errlen, "cannot switch to user %s: %s", cfg->run_as, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || geteuid() == 0 || getegid() == 0) {
		snprintf(err, errlen, "switched to user %s but root can be taken back", cfg->run_as);
		return -1;
	}
	return 0;
}
