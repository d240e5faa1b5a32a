/* common/cfgdiff.c — see cfgdiff.h: what a reload changes (pure). */
#include "common/cfgdiff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The [vm] block cfg_print writes for vm (malloc'd, NUL-terminated), or
 * NULL when out of memory.  The surrounding config is a fixed stand-in, so
 * only the VM's own effective keys end up in the text. */
static char *vm_repr(const struct cfg_vm *vm)
{
    static char empty[] = "";
    struct cfg base;
    memset(&base, 0, sizeof base);
    base.cert = base.key = base.passwd_file = base.novnc_dir = empty;
    snprintf(base.address, sizeof base.address, "127.0.0.1");
    base.processes = 1;
    base.vms = (struct cfg_vm *)vm;
    base.n_vms = 1;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    cfg_print(&base, f);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    char *start = strstr(text, "\n[vm ");
    char *end = start ? strstr(start, "\n# routes") : NULL;
    if (!start || !end) {
        free(text);
        return NULL;
    }
    *end = '\0';
    memmove(text, start, (size_t)(end - start) + 1);
    return text;
}

bool cfg_vm_equal(const struct cfg_vm *a, const struct cfg_vm *b)
{
    if (strcmp(a->name, b->name) != 0)
        return false;
    char *ra = vm_repr(a), *rb = vm_repr(b);
    bool same = ra && rb && strcmp(ra, rb) == 0;
    free(ra);
    free(rb);
    return same;
}

size_t cfg_diff(const struct cfg *old, const struct cfg *nw, enum cfg_change *old_st,
                enum cfg_change *new_st)
{
    size_t n = 0;
    for (size_t i = 0; i < old->n_vms; i++) {
        const struct cfg_vm *o = &old->vms[i];
        const struct cfg_vm *v = cfg_find_vm(nw, o->name);
        enum cfg_change st = !v ? CFG_REMOVED : cfg_vm_equal(o, v) ? CFG_SAME : CFG_CHANGED;
        if (old_st)
            old_st[i] = st;
        n += st != CFG_SAME;
    }
    for (size_t j = 0; j < nw->n_vms; j++) {
        const struct cfg_vm *v = &nw->vms[j];
        const struct cfg_vm *o = cfg_find_vm(old, v->name);
        enum cfg_change st = !o ? CFG_ADDED : cfg_vm_equal(o, v) ? CFG_SAME : CFG_CHANGED;
        if (new_st)
            new_st[j] = st;
        n += st == CFG_ADDED;        /* changed ones were counted above */
    }
    return n;
}

const char *cfg_fixed_changed(const struct cfg *old, const struct cfg *nw)
{
    if (strcmp(old->address, nw->address) != 0)
        return "address";
    if (strcmp(old->user, nw->user) != 0)
        return "user";
    if (strcmp(old->socket_dir, nw->socket_dir) != 0)
        return "socket_dir";
    if (cfg_processes(old) != cfg_processes(nw))
        return "processes";
    if (old->sandbox != nw->sandbox)
        return "sandbox";
    if (strcmp(old->audit, nw->audit) != 0)
        return "audit";
    if (strcmp(old->control, nw->control) != 0)
        return "control";
    if (strcmp(old->admin_group, nw->admin_group) != 0)
        return "admin_group";
    if (strcmp(old->metrics, nw->metrics) != 0)
        return "metrics";
    if (old->auth_workers != nw->auth_workers)
        return "auth_workers";
    if (old->fw.present != nw->fw.present)
        return "firewall";
    return NULL;
}

/* Is [s, e) (a trimmed header body or key) equal to word? */
static bool span_is(const char *s, const char *e, const char *word)
{
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    size_t n = strlen(word);
    return (size_t)(e - s) == n && memcmp(s, word, n) == 0;
}

int cfg_key_line(const char *text, size_t len, const char *section, const char *key)
{
    bool in = false;
    int line = 0;
    for (size_t pos = 0; pos < len;) {
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        const char *e = nl ? nl : text + len;
        pos = (size_t)(e - text) + 1;
        line++;
        const char *semi = memchr(s, ';', (size_t)(e - s));
        const char *hash = memchr(s, '#', (size_t)(e - s));
        const char *ce = semi && (!hash || semi < hash) ? semi : hash ? hash : e;
        const char *p = s;
        while (p < ce && (*p == ' ' || *p == '\t'))
            p++;
        if (p < ce && *p == '[') {
            const char *close = memchr(p, ']', (size_t)(ce - p));
            if (!close)
                continue;
            /* "[vm  NAME]" and "[vm NAME]" are the same section */
            const char *b = p + 1;
            if (strncmp(section, "vm ", 3) == 0 && close - b > 3 && memcmp(b, "vm", 2) == 0 &&
                (b[2] == ' ' || b[2] == '\t'))
                in = span_is(b + 2, close, section + 3);
            else
                in = span_is(b, close, section);
            if (in && !key)
                return line;
            continue;
        }
        if (!in || !key)
            continue;
        const char *eq = memchr(p, '=', (size_t)(ce - p));
        if (eq && span_is(p, eq, key))
            return line;
    }
    return 0;
}

size_t cfg_listeners(const struct cfg *c, struct cfg_listen *out, size_t max)
{
    size_t n = 0;
#define PUT(k, p, v)                                                                   \
    do {                                                                               \
        if (n < max)                                                                   \
            out[n] = (struct cfg_listen){ .kind = (k), .port = (p), .vm = (v) };       \
        n++;                                                                           \
    } while (0)
    for (size_t i = 0; i < c->n_vms; i++) {
        if (c->vms[i].vnc_port)
            PUT(CFG_L_VNC, c->vms[i].vnc_port, &c->vms[i]);
        if (c->vms[i].spice_port)
            PUT(CFG_L_SPICE, c->vms[i].spice_port, &c->vms[i]);
    }
    if (c->web_port)
        PUT(CFG_L_WEB, c->web_port, NULL);
    for (size_t i = 0; i < c->n_vms && c->socket_dir[0]; i++)
        if (c->vms[i].vnc.kind != CFG_BE_NONE)
            PUT(CFG_L_LOCAL, 0, &c->vms[i]);
    for (size_t i = 0; i < c->n_vms && c->socket_dir[0]; i++)
        if (c->vms[i].serial.kind != CFG_BE_NONE)
            PUT(CFG_L_SERIAL, 0, &c->vms[i]);
    for (size_t i = 0; i < c->n_vms && c->socket_dir[0]; i++)
        if (c->vms[i].spice.kind != CFG_BE_NONE)
            PUT(CFG_L_LOCAL_SPICE, 0, &c->vms[i]);
#undef PUT
    return n;
}

const char *cfg_lkind_ext(unsigned kind)
{
    return kind == CFG_L_LOCAL ? "vnc" : kind == CFG_L_SERIAL ? "serial"
         : kind == CFG_L_LOCAL_SPICE ? "spice" : NULL;
}

bool cfg_listen_same(const struct cfg_listen *a, const struct cfg_listen *b)
{
    if (cfg_lkind_local(a->kind) != cfg_lkind_local(b->kind))
        return false;
    if (cfg_lkind_local(a->kind))
        return a->kind == b->kind && strcmp(a->vm->name, b->vm->name) == 0;
    return a->port == b->port;
}
