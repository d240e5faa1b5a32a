/* gateway/gateway.h — the daemon (vmgate run) and vmgate check. */
#ifndef VMGATE_GATEWAY_H
#define VMGATE_GATEWAY_H

/* Run the gateway in the foreground until SIGTERM/SIGINT.  Returns the
 * process exit code (1 with a message on stderr for a bad config, a missing
 * certificate or a port in use). */
int gateway_run(const char *cfgfile, int verbose);
/* Validate the config and print the effective routes; 0 ok, 1 errors. */
int gateway_check(const char *cfgfile);

/* Turn on PR_SET_NO_NEW_PRIVS and the network process's seccomp
 * allow-list (default action: kill the process).  Called once everything
 * is opened and privileges are dropped, right before the event loop runs.
 * Returns 0, or -1 with err set (nothing loaded). */
#include <stddef.h>
int gateway_sandbox(char *err, size_t errlen);

#endif
