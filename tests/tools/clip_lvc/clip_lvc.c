/* tests/tools/clip_lvc/clip_lvc.c — a legacy-cut-text VNC viewer for the
 * clipboard tests, on libvncclient (which knows only legacy ServerCutText /
 * ClientCutText, like gtk-vnc and Remmina).  Not built by the Makefile (it
 * needs libvncserver-dev); t51-clip-legacy.sh compiles it with
 *     gcc -o clip_lvc clip_lvc.c $(pkg-config --cflags --libs libvncclient)
 *
 *     clip_lvc HOST PORT CAFILE
 *
 * Logs in with VeNCrypt X509Plain (user and password from VNC_USERNAME and
 * VNC_PASSWORD; the server certificate must verify against CAFILE and match
 * HOST), then runs until stdin is closed or says "quit".  Commands on stdin,
 * one a line:
 *     send HEX     send ClientCutText with these bytes (Latin-1, per RFB)
 *     refresh      request a full framebuffer update; "refreshed N" follows
 *                  when it has arrived (proof the session is alive)
 *     dump FILE    write the framebuffer as a binary PPM; "dumped WxH" follows
 *     quit
 * Output on stdout, one event a line, flushed at once:
 *     connected WxH bpp=N           (N = bits per pixel of the format in use)
 *     cuttext len=N hex=HEX        a ServerCutText arrived
 *     sent len=N
 *     refreshed N                  (N = updates completed so far)
 *     closed                       the server ended the session
 * Environment: CLIP_LVC_BPP = 32 (default: depth 24), 16 (RGB565) or 8
 * (BGR233) sets the pixel format asked for; CLIP_LVC_ENCODINGS the
 * encodings offered, in libvncclient's syntax ("tight", "zrle hextile", ...;
 * default libvncclient's own list, with encodings vmgate cannot follow).
 * CLIP_LVC_RECONNECT=1: when libvncclient drops the session with "Rect too
 * large" (QEMU's resize race, see the main loop), log in again and print
 * "reconnected WxH (libvncclient: MESSAGE)".
 * libvncclient's own log goes to stderr.  Exit status 0 after quit/EOF, 1 if
 * the connection failed or was closed by the server. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rfb/rfbclient.h>

static const char *ca_file;
static unsigned long updates;
static int refresh_pending;

static char last_err[256];   /* libvncclient's last log line */

static void log_stderr(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_err, sizeof last_err, fmt, ap);
    va_end(ap);
    fputs(last_err, stderr);
}

static char *dupenv(const char *name)
{
    const char *v = getenv(name);
    return strdup(v ? v : "");
}

static rfbCredential *get_credential(rfbClient *cl, int type)
{
    (void)cl;
    rfbCredential *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (type == rfbCredentialTypeX509) {
        c->x509Credential.x509CACertFile = strdup(ca_file);
        c->x509Credential.x509CrlVerifyMode = rfbX509CrlVerifyNone;
    } else if (type == rfbCredentialTypeUser) {
        c->userCredential.username = dupenv("VNC_USERNAME");
        c->userCredential.password = dupenv("VNC_PASSWORD");
    } else {
        free(c);
        return NULL;
    }
    return c;
}

static void got_cut_text(rfbClient *cl, const char *text, int len)
{
    (void)cl;
    printf("cuttext len=%d hex=", len);
    for (int i = 0; i < len; i++)
        printf("%02x", (unsigned char)text[i]);
    printf("\n");
    fflush(stdout);
}

static void finished_update(rfbClient *cl)
{
    (void)cl;
    updates++;
    if (refresh_pending) {
        refresh_pending = 0;
        printf("refreshed %lu\n", updates);
        fflush(stdout);
    }
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The framebuffer as a binary PPM, whatever the pixel format. */
static int dump(rfbClient *cl, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    const rfbPixelFormat *pf = &cl->format;
    int bpp = pf->bitsPerPixel / 8;
    fprintf(f, "P6\n%d %d\n255\n", cl->width, cl->height);
    for (int y = 0; y < cl->height; y++) {
        for (int x = 0; x < cl->width; x++) {
            const uint8_t *p = cl->frameBuffer + ((size_t)y * cl->width + x) * bpp;
            uint32_t v = 0;
            for (int i = 0; i < bpp; i++)
                v |= (uint32_t)p[i] << (pf->bigEndian ? 8 * (bpp - 1 - i) : 8 * i);
            unsigned ch[3] = {(v >> pf->redShift) & pf->redMax, (v >> pf->greenShift) & pf->greenMax,
                              (v >> pf->blueShift) & pf->blueMax};
            unsigned max[3] = {pf->redMax, pf->greenMax, pf->blueMax};
            for (int c = 0; c < 3; c++)
                fputc(max[c] ? (int)(ch[c] * 255 / max[c]) : 0, f);
        }
    }
    return fclose(f);
}

/* Run one command line; returns 0 to go on, 1 to quit. */
static int command(rfbClient *cl, char *line)
{
    line[strcspn(line, "\r\n")] = 0;
    if (strncmp(line, "send", 4) == 0) {
        const char *h = line + 4;
        while (*h == ' ')
            h++;
        size_t n = strlen(h) / 2;
        char *b = malloc(n + 1);
        if (!b)
            return 1;
        for (size_t i = 0; i < n; i++) {
            int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                fprintf(stderr, "clip_lvc: bad hex in: %s\n", line);
                free(b);
                return 0;
            }
            b[i] = (char)(hi << 4 | lo);
        }
        if (!SendClientCutText(cl, b, (int)n)) {
            free(b);
            return 1;
        }
        free(b);
        printf("sent len=%zu\n", n);
    } else if (strcmp(line, "refresh") == 0) {
        refresh_pending = 1;
        if (!SendFramebufferUpdateRequest(cl, 0, 0, cl->width, cl->height, FALSE))
            return 1;
    } else if (strncmp(line, "dump ", 5) == 0) {
        if (dump(cl, line + 5) != 0)
            fprintf(stderr, "clip_lvc: cannot write %s\n", line + 5);
        else
            printf("dumped %dx%d\n", cl->width, cl->height);
    } else if (strcmp(line, "quit") == 0) {
        return 1;
    } else if (line[0]) {
        fprintf(stderr, "clip_lvc: unknown command: %s\n", line);
    }
    fflush(stdout);
    return 0;
}

/* A client for host:port logged in, or NULL (printed "failed" is the
 * caller's). */
static rfbClient *open_client(const char *host, const char *port)
{
    const char *bpp = getenv("CLIP_LVC_BPP");
    int bits = bpp && *bpp ? atoi(bpp) : 32;
    rfbClient *cl = bits == 16 ? rfbGetClient(5, 3, 2) : bits == 8 ? rfbGetClient(2, 3, 1)
                                                                  : rfbGetClient(8, 3, 4);
    if (!cl)
        return NULL;
    if (bits == 16) {            /* RGB565 */
        cl->format.depth = 16;
        cl->format.redMax = 31;
        cl->format.greenMax = 63;
        cl->format.blueMax = 31;
        cl->format.redShift = 11;
        cl->format.greenShift = 5;
        cl->format.blueShift = 0;
    } else if (bits == 8) {      /* BGR233 */
        cl->format.depth = 8;
        cl->format.redMax = 7;
        cl->format.greenMax = 7;
        cl->format.blueMax = 3;
        cl->format.redShift = 0;
        cl->format.greenShift = 3;
        cl->format.blueShift = 6;
    }
    const char *enc = getenv("CLIP_LVC_ENCODINGS");
    if (enc && *enc)
        cl->appData.encodingsString = enc;
    cl->serverHost = strdup(host);
    cl->serverPort = atoi(port);
    cl->GetCredential = get_credential;
    cl->GotXCutText = got_cut_text;
    cl->FinishedFrameBufferUpdate = finished_update;
    cl->canHandleNewFBSize = TRUE;
    cl->appData.shareDesktop = TRUE;
    if (!rfbInitClient(cl, NULL, NULL))     /* frees cl on failure */
        return NULL;
    return cl;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: clip_lvc HOST PORT CAFILE\n");
        return 2;
    }
    ca_file = argv[3];
    rfbClientLog = rfbClientErr = log_stderr;

    rfbClient *cl = open_client(argv[1], argv[2]);
    if (!cl) {
        printf("failed\n");
        return 1;
    }
    printf("connected %dx%d bpp=%d\n", cl->width, cl->height, cl->format.bitsPerPixel);
    fflush(stdout);

    char line[1 << 16];
    size_t have = 0;
    int stdin_open = 1, rc = 0;
    for (;;) {
        int w = WaitForMessage(cl, 100000);
        if (w < 0 || (w > 0 && !HandleRFBServerMessage(cl))) {
            /* QEMU 7.2 sometimes sends a rectangle of the other surface size
             * right after a resize, and libvncclient gives up on the session
             * ("Rect too large"); seen with libvncclient straight to QEMU as
             * well.  With CLIP_LVC_RECONNECT=1 that one case logs in again. */
            const char *re = getenv("CLIP_LVC_RECONNECT");
            if (re && strcmp(re, "1") == 0 && strstr(last_err, "Rect too large")) {
                char why[sizeof last_err];
                snprintf(why, sizeof why, "%s", last_err);
                why[strcspn(why, "\n")] = 0;
                rfbClientCleanup(cl);
                cl = open_client(argv[1], argv[2]);
                if (cl) {
                    printf("reconnected %dx%d (libvncclient: %s)\n", cl->width, cl->height, why);
                    fflush(stdout);
                    continue;
                }
                printf("closed\n");
                return 1;
            }
            printf("closed\n");
            rc = 1;
            break;
        }
        if (!stdin_open)
            continue;
        struct pollfd p = {.fd = 0, .events = POLLIN};
        if (poll(&p, 1, 0) <= 0)
            continue;
        ssize_t r = read(0, line + have, sizeof line - 1 - have);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            break;   /* EOF: done */
        }
        have += (size_t)r;
        line[have] = 0;
        char *nl;
        int quit = 0;
        while (!quit && (nl = memchr(line, '\n', have)) != NULL) {
            size_t l = (size_t)(nl - line) + 1;
            char c = line[l];
            line[l] = 0;
            quit = command(cl, line);
            line[l] = c;
            memmove(line, line + l, have - l);
            have -= l;
            line[have] = 0;
        }
        if (quit)
            break;
        if (have == sizeof line - 1)
            have = 0;   /* an overlong line: drop it */
    }
    fflush(stdout);
    rfbClientCleanup(cl);
    return rc;
}
