/*
 * authpool.c: the bind password checks of the SMPP server, on worker threads
 * (see authpool.h).  One mutex guards the two lists (queued, answered) and
 * the counts; workers wait on a condition variable; the loop learns of
 * answers through an ev_async and calls each job's function there, so
 * nothing but the PBKDF2 itself runs off the loop.
 */
#include "authpool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "passwd.h"

#define PASSWORD_MAX 65

struct job {
	struct job      *next;
	char             password[PASSWORD_MAX];
	char             stored[SMPP_PASSWD_HASH_MAX];
	authpool_done_fn fn;
	void            *arg;
	int              result;
};

struct authpool {
	struct ev_loop *loop;
	ev_async        wake;
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	struct job     *q_head, *q_tail;   /* waiting for a worker */
	struct job     *answered;          /* waiting for the loop */
	unsigned        queued, max_queue; /* queued: not answered on the loop yet */
	int             stopping;
	pthread_t      *threads;
	unsigned        n_threads;
};

static void *worker(void *arg)
{
	struct authpool *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->q_head && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stopping)
			break;
		struct job *j = p->q_head;
		p->q_head = j->next;
		if (!p->q_head)
			p->q_tail = NULL;
		pthread_mutex_unlock(&p->mu);
		j->result = smpp_passwd_verify(j->password, j->stored);
		OPENSSL_cleanse(j->password, sizeof(j->password));
		pthread_mutex_lock(&p->mu);
		j->next = p->answered;
		p->answered = j;
		ev_async_send(p->loop, &p->wake);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)loop;
	(void)revents;
	struct authpool *p = w->data;
	pthread_mutex_lock(&p->mu);
	struct job *list = p->answered;
	p->answered = NULL;
	pthread_mutex_unlock(&p->mu);
	while (list) {
		struct job *j = list;
		list = j->next;
		pthread_mutex_lock(&p->mu);
		p->queued--;
		pthread_mutex_unlock(&p->mu);
		j->fn(j->arg, j->result);
		free(j);
	}
}

struct authpool *authpool_new(struct ev_loop *loop, unsigned threads, unsigned max_queue)
{
	struct authpool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->loop = loop;
	p->max_queue = max_queue ? max_queue : 1;
	p->threads = calloc(threads ? threads : 1, sizeof(*p->threads));
	if (!p->threads || pthread_mutex_init(&p->mu, NULL) != 0) {
		free(p->threads);
		free(p);
		return NULL;
	}
	pthread_cond_init(&p->cv, NULL);
	ev_async_init(&p->wake, wake_cb);
	p->wake.data = p;
	ev_async_start(loop, &p->wake);
	ev_unref(loop);   /* the pool alone keeps no loop running */
	for (unsigned i = 0; i < (threads ? threads : 1); i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p) != 0)
			break;
		p->n_threads++;
	}
	if (p->n_threads == 0) {
		authpool_free(p);
		return NULL;
	}
	return p;
}

int authpool_verify(struct authpool *p, const char *password, const char *stored, authpool_done_fn fn, void *arg)
{
	size_t pl = strlen(password), sl = strlen(stored);
	if (pl >= PASSWORD_MAX || sl >= SMPP_PASSWD_HASH_MAX)
		return -1;
	pthread_mutex_lock(&p->mu);
	int full = p->queued >= p->max_queue;
	pthread_mutex_unlock(&p->mu);
	if (full)
		return -1;
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		return -1;
	memcpy(j->password, password, pl + 1);
	memcpy(j->stored, stored, sl + 1);
	j->fn = fn;
	j->arg = arg;
	pthread_mutex_lock(&p->mu);
	p->queued++;
	if (p->q_tail)
		p->q_tail->next = j;
	else
		p->q_head = j;
	p->q_tail = j;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

unsigned authpool_queued(const struct authpool *p)
{
	pthread_mutex_lock((pthread_mutex_t *)&p->mu);
	unsigned n = p->queued;
	pthread_mutex_unlock((pthread_mutex_t *)&p->mu);
	return n;
}

static void free_list(struct job *j)
{
	while (j) {
		struct job *next = j->next;
		OPENSSL_cleanse(j->password, sizeof(j->password));
		free(j);
		j = next;
	}
}

void authpool_free(struct authpool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i], NULL);
	ev_ref(p->loop);
	ev_async_stop(p->loop, &p->wake);
	free_list(p->q_head);
	free_list(p->answered);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->threads);
	free(p);
}
