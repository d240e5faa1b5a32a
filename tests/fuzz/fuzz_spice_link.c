// fuzz-sources: proxy/spice_link.c
// fuzz-libs: -lcrypto
/* libFuzzer target: the SPICE link phase parsers (proxy/spice_link.c) — the
 * viewer's link message, the VM's link reply, the SASL mechanism and data
 * messages and SASL PLAIN, with a rebuild/reparse round trip.  The first
 * input byte picks the parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/spice_link.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    data++;
    size--;
    char why[256];
    uint32_t err;
    switch (sel % 5) {
    case 0: {
        struct spice_link_mess m;
        int r = spice_parse_link(data, size, &m, &err, why, sizeof why);
        if (r > 0) {
            if ((size_t)r > size || m.n_channel > SPICE_CAPS_MAX)
                abort();
            uint8_t out[16 + 18 + 4 + 4 * SPICE_CAPS_MAX];
            size_t l = spice_build_link(out, sizeof out, &m, m.common0);
            struct spice_link_mess m2;
            if (l && spice_parse_link(out, l, &m2, &err, why, sizeof why) != (int)l)
                abort();
        } else if (r == SPL_NEED) {
            /* every prefix of a NEED is NEED too */
            for (size_t n = 0; n < size && n < 64; n++)
                if (spice_parse_link(data, n, &m, &err, why, sizeof why) == SPL_BAD)
                    abort();
        }
        break;
    }
    case 1: {
        struct spice_link_reply r;
        int n = spice_parse_reply(data, size, &r, why, sizeof why);
        if (n > 0 && r.error == 0) {
            uint8_t out[16 + 178 + 4 + 4 * SPICE_CAPS_MAX];
            size_t l = spice_build_reply(out, sizeof out, r.common0, r.chan_caps, r.n_channel);
            if (!l || spice_parse_reply(out, l, &r, why, sizeof why) != (int)l)
                abort();
        }
        break;
    }
    case 2: {
        char mech[SPICE_SASL_MECH_MAX + 1];
        int r = spice_parse_sasl_mech(data, size, mech, why, sizeof why);
        if (r > 0 && strlen(mech) + 4 != (size_t)r)
            abort();
        break;
    }
    case 3: {
        const uint8_t *d;
        uint32_t l;
        int r = spice_parse_sasl_data(data, size, SPICE_SASL_DATA_MAX, &d, &l, why, sizeof why);
        if (r > 0 && (l > SPICE_SASL_DATA_MAX || d + l > data + size))
            abort();
        break;
    }
    default: {
        char user[SPICE_SASL_USER_MAX + 1], pass[SPICE_SASL_PASS_MAX + 1];
        if (spice_sasl_plain(data, size, user, sizeof user, pass, sizeof pass, why,
                             sizeof why) == 0 && (!user[0] || strlen(user) > SPICE_SASL_USER_MAX))
            abort();
        break;
    }
    }
    return 0;
}
