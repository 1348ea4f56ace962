"""postload: single-recipient POST /v1/messages from client threads, every answer recorded.

The everyday load of the fault tests (t_crash, t_failover): `clients`
threads, each on its own keep-alive connection, post one new number each
(first_number + 1, + 2, ...) until stopped.  A connection error (the daemon
is dead, or restarting) closes the connection and the next post opens
another; after any answer but a 202 a client pauses 50 ms.  Every answer is
an Answer: sent and answered (time.monotonic()), its status (an int, or
"error NAME" when no answer came), Retry-After, the message id of a 202,
the number, and the wall-clock time of the answer (time.time(), to compare
with PostgreSQL's timestamps).
"""
import collections
import http.client
import json
import threading
import time

Answer = collections.namedtuple("Answer", "sent answered status retry_after id to wall")


class PostLoad:
    def __init__(self, env, clients, first_number, text, timeout=10):
        self.env, self.text, self.timeout = env, text, timeout
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers = []
        self.seq = 0
        self.first_number = first_number
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _next_number(self):
        with self.lock:
            self.seq += 1
            return str(self.first_number + self.seq)

    def _run(self):
        conn = None
        while not self.stop.is_set():
            to = self._next_number()
            sent = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.env.http_port, timeout=self.timeout)
                body = json.dumps({"from": "PUSHGATE", "to": [to], "text": self.text}).encode()
                conn.request("POST", "/v1/messages", body,
                             {"Content-Type": "application/json", "Authorization": f"Bearer {self.env.key}"})
                r = conn.getresponse()
                raw = r.read()
                mid = json.loads(raw)["id"] if r.status == 202 else None
                answer = Answer(sent, time.monotonic(), r.status, r.getheader("Retry-After"), mid, to, time.time())
            except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
                answer = Answer(sent, time.monotonic(), f"error {type(e).__name__}", None, None, to, time.time())
                if conn is not None:
                    conn.close()
                conn = None
            with self.lock:
                self.answers.append(answer)
            if answer.status != 202:
                time.sleep(0.05)
        if conn is not None:
            conn.close()

    def start(self):
        for t in self.threads:
            t.start()

    def select(self, status=None, sent_after=None, answered_after=None):
        """The answers so far with that status, sent / answered after those monotonic times."""
        with self.lock:
            return [a for a in self.answers
                    if (status is None or a.status == status)
                    and (sent_after is None or a.sent >= sent_after)
                    and (answered_after is None or a.answered >= answered_after)]

    def acked(self):
        """message id -> (number, wall-clock time of its 202), so far."""
        return {a.id: (a.to, a.wall) for a in self.select(202)}

    def errors(self):
        """How many answers were not a 202, by status."""
        with self.lock:
            return dict(collections.Counter(a.status for a in self.answers if a.status != 202))

    def finish(self):
        """Stops the clients (each finishes its post) and returns every answer."""
        self.stop.set()
        for t in self.threads:
            t.join(timeout=self.timeout + 30)
        assert not any(t.is_alive() for t in self.threads), "a client thread did not stop"
        with self.lock:
            return list(self.answers)
