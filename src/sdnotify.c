/*
 * sdnotify.c: tells systemd (or whatever set $NOTIFY_SOCKET) how the
 * daemon is: READY=1 when the gate opens, STOPPING=1 when the drain
 * begins.  One datagram to the unix socket named by $NOTIFY_SOCKET ("@":
 * the abstract namespace); nothing when it is unset.  Never blocks (a
 * full socket drops the line), never fails the caller.
 */
#include "sdnotify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int sdnotify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t plen = path ? strlen(path) : 0;
	struct sockaddr_un sa;
	if (plen < 2 || plen >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@'))
		return 0;   /* not under a service manager */
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, plen);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
	ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
	int saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)strlen(state) ? 1 : -1;
}
