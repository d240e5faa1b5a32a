/* tests/unit/test_idle.c — the wake-on-connect state machine (auth/idle.c):
 * every transition, idle time from the start, the "paused by someone else"
 * rules (no stop unless running, no cont unless vmgate's record and
 * "paused"), a login while pausing, failures, and the text of the state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "auth/idle.h"

#define IDLE 2000u
#define WALL0 UINT64_C(1796624400000)   /* 2026-12-07T06:20:00Z */

static struct idle_vm v;
static struct idle_out o;

static int setup(void **state)
{
    (void)state;
    idle_init(&v, IDLE, 1000, WALL0);
    return 0;
}

/* Run the machine from RUNNING (no session) into PAUSED at time t. */
static void pause_at(uint64_t t)
{
    idle_tick(&v, t, &o);
    assert_int_equal(o.act, IDLE_ACT_QUERY);
    idle_answer(&v, true, "running", t, WALL0, &o);
    assert_int_equal(o.act, IDLE_ACT_STOP);
    idle_answer(&v, true, NULL, t, WALL0, &o);
    assert_int_equal(v.st, IDLE_PAUSED);
}

static void test_idle_from_start(void **state)
{
    (void)state;
    /* nobody opened it: paused idle_ms after start, not before */
    assert_int_equal(idle_deadline(&v), 1000 + IDLE);
    idle_tick(&v, 1000 + IDLE - 1, &o);
    assert_int_equal(o.act, IDLE_ACT_NONE);
    assert_int_equal(v.st, IDLE_RUNNING);
    idle_tick(&v, 1000 + IDLE, &o);
    assert_int_equal(o.act, IDLE_ACT_QUERY);
    assert_int_equal(v.st, IDLE_CHECKING);
    assert_true(o.changed);
    assert_true(idle_busy(&v));
    assert_int_equal(idle_deadline(&v), 0);          /* no timer while checking */
    idle_answer(&v, true, "running", 3000, WALL0, &o);
    assert_int_equal(o.act, IDLE_ACT_STOP);
    assert_int_equal(v.st, IDLE_STOPPING);
    idle_answer(&v, true, NULL, 3001, WALL0 + 2001, &o);
    assert_int_equal(v.st, IDLE_PAUSED);
    assert_int_equal(o.ev, IDLE_EV_PAUSED);
    assert_string_equal(o.why, "no session for 2s");
    assert_int_equal(o.act, IDLE_ACT_NONE);
    assert_false(o.release);
    assert_int_equal(idle_deadline(&v), 0);
}

static void test_sessions_hold_the_timer(void **state)
{
    (void)state;
    idle_sessions(&v, 1, 1500, WALL0 + 500, &o);
    assert_int_equal(idle_deadline(&v), 0);
    idle_tick(&v, 100000, &o);
    assert_int_equal(o.act, IDLE_ACT_NONE);
    idle_sessions(&v, 2, 100000, WALL0, &o);
    idle_sessions(&v, 1, 100500, WALL0, &o);
    assert_int_equal(idle_deadline(&v), 0);
    /* the last one leaves: idle from then */
    idle_sessions(&v, 0, 200000, WALL0 + 199000, &o);
    assert_int_equal(idle_deadline(&v), 200000 + IDLE);
    assert_int_equal(v.idle_since, WALL0 + 199000);
    idle_tick(&v, 200000 + IDLE - 1, &o);
    assert_int_equal(o.act, IDLE_ACT_NONE);
    idle_tick(&v, 200000 + IDLE, &o);
    assert_int_equal(o.act, IDLE_ACT_QUERY);
}

static void test_login_restarts_idle_time(void **state)
{
    (void)state;
    /* a login while running: not held, and the idle time starts again
     * (no pause between the login and the session opening) */
    assert_false(idle_login(&v, 2500, &o));
    assert_int_equal(o.act, IDLE_ACT_NONE);
    assert_int_equal(idle_deadline(&v), 2500 + IDLE);
}

static void test_wake_on_login(void **state)
{
    (void)state;
    pause_at(3000);
    assert_true(idle_login(&v, 5000, &o));           /* held */
    assert_int_equal(o.act, IDLE_ACT_QUERY);
    assert_int_equal(v.st, IDLE_WAKE_CHECK);
    /* a second login meanwhile waits for the same wake */
    assert_true(idle_login(&v, 5001, &o));
    assert_int_equal(o.act, IDLE_ACT_NONE);
    idle_answer(&v, true, "paused", 5002, WALL0, &o);
    assert_int_equal(o.act, IDLE_ACT_CONT);
    assert_false(o.release);                         /* not before cont is done */
    assert_int_equal(v.st, IDLE_WAKING);
    assert_true(idle_login(&v, 5003, &o));
    idle_answer(&v, true, NULL, 5004, WALL0, &o);
    assert_true(o.release);
    assert_int_equal(o.ev, IDLE_EV_RESUMED);
    assert_int_equal(v.st, IDLE_RUNNING);
    assert_string_equal(v.status, "running");
    assert_int_equal(idle_deadline(&v), 5004 + IDLE);
}

static void test_no_stop_unless_running(void **state)
{
    (void)state;
    /* paused by someone else (an admin's QMP stop): vmgate does not record
     * it as its own, so a login never resumes it */
    idle_tick(&v, 3000, &o);
    idle_answer(&v, true, "paused", 3000, WALL0, &o);
    assert_int_equal(o.act, IDLE_ACT_NONE);
    assert_int_equal(o.ev, IDLE_EV_LEFT);
    assert_int_equal(v.st, IDLE_RUNNING);
    assert_string_equal(v.status, "paused");
    assert_false(idle_login(&v, 3500, &o));          /* not held, nothing sent */
    assert_int_equal(o.act, IDLE_ACT_NONE);
    /* checked again after another idle period */
    assert_int_equal(idle_deadline(&v), 3500 + IDLE);
    /* other states are left alone too */
    idle_tick(&v, 3500 + IDLE, &o);
    idle_answer(&v, true, "shutdown", 3500 + IDLE, WALL0, &o);
    assert_int_equal(o.act, IDLE_ACT_NONE);
    assert_int_equal(v.st, IDLE_RUNNING);
}

static void test_no_cont_unless_paused(void **state)
{
    (void)state;
    /* vmgate paused it, then someone resumed it (and maybe paused it
     * otherwise): the wake's query says not paused -> no cont, record void */
    pause_at(3000);
    assert_true(idle_login(&v, 4000, &o));
    idle_answer(&v, true, "running", 4001, WALL0, &o);
    assert_int_equal(o.act, IDLE_ACT_NONE);
    assert_true(o.release);
    assert_int_equal(o.ev, IDLE_EV_LEFT);
    assert_int_equal(v.st, IDLE_RUNNING);
    pause_at(10000);
    assert_true(idle_login(&v, 11000, &o));
    idle_answer(&v, true, "shutdown", 11001, WALL0, &o);
    assert_int_equal(o.act, IDLE_ACT_NONE);
    assert_true(o.release);
    assert_int_equal(v.st, IDLE_RUNNING);
}

static void test_forget(void **state)
{
    (void)state;
    /* `vmgate vm VM resume`/`pause` voids the record: a later login
     * sends nothing */
    pause_at(3000);
    idle_forget(&v, &o);
    assert_true(o.changed);
    assert_int_equal(v.st, IDLE_RUNNING);
    idle_sessions(&v, 1, 3100, WALL0, &o);
    assert_false(idle_login(&v, 3200, &o));
    assert_int_equal(o.act, IDLE_ACT_NONE);
}

static void test_login_while_checking(void **state)
{
    (void)state;
    idle_tick(&v, 3000, &o);
    assert_true(idle_login(&v, 3001, &o));           /* held until the check ends */
    assert_int_equal(o.act, IDLE_ACT_NONE);
    idle_answer(&v, true, "running", 3002, WALL0, &o);
    assert_int_equal(o.act, IDLE_ACT_NONE);          /* no stop after a login */
    assert_true(o.release);
    assert_int_equal(v.st, IDLE_RUNNING);
}

static void test_login_while_stopping(void **state)
{
    (void)state;
    idle_tick(&v, 3000, &o);
    idle_answer(&v, true, "running", 3000, WALL0, &o);
    assert_int_equal(o.act, IDLE_ACT_STOP);
    assert_true(idle_login(&v, 3001, &o));           /* held: stop is in flight */
    assert_int_equal(o.act, IDLE_ACT_NONE);
    /* the pause completes, then the VM is resumed at once */
    idle_answer(&v, true, NULL, 3002, WALL0, &o);
    assert_int_equal(o.ev, IDLE_EV_PAUSED);
    assert_int_equal(o.act, IDLE_ACT_QUERY);
    assert_false(o.release);
    assert_int_equal(v.st, IDLE_WAKE_CHECK);
    idle_answer(&v, true, "paused", 3003, WALL0, &o);
    assert_int_equal(o.act, IDLE_ACT_CONT);
    idle_answer(&v, true, NULL, 3004, WALL0, &o);
    assert_true(o.release);
    assert_int_equal(o.ev, IDLE_EV_RESUMED);
    assert_int_equal(v.st, IDLE_RUNNING);
}

static void test_session_during_check(void **state)
{
    (void)state;
    idle_tick(&v, 3000, &o);
    idle_sessions(&v, 1, 3001, WALL0, &o);
    idle_answer(&v, true, "running", 3002, WALL0, &o);
    assert_int_equal(o.act, IDLE_ACT_NONE);
    assert_int_equal(v.st, IDLE_RUNNING);
    assert_int_equal(idle_deadline(&v), 0);
}

static void test_failures(void **state)
{
    (void)state;
    /* query fails: not paused, tried again later */
    idle_tick(&v, 3000, &o);
    idle_answer(&v, false, NULL, 3000, WALL0, &o);
    assert_int_equal(o.ev, IDLE_EV_FAILED);
    assert_int_equal(v.st, IDLE_RUNNING);
    assert_int_equal(idle_deadline(&v), 3000 + IDLE);
    /* stop fails */
    idle_tick(&v, 3000 + IDLE, &o);
    idle_answer(&v, true, "running", 3000 + IDLE, WALL0, &o);
    idle_answer(&v, false, NULL, 3000 + IDLE, WALL0, &o);
    assert_int_equal(o.ev, IDLE_EV_FAILED);
    assert_int_equal(v.st, IDLE_RUNNING);
    /* wake's query fails: stays vmgate's pause, the login goes on */
    pause_at(20000);
    assert_true(idle_login(&v, 21000, &o));
    idle_answer(&v, false, NULL, 21001, WALL0, &o);
    assert_true(o.release);
    assert_int_equal(v.st, IDLE_PAUSED);
    /* cont fails: same */
    assert_true(idle_login(&v, 22000, &o));
    idle_answer(&v, true, "paused", 22001, WALL0, &o);
    idle_answer(&v, false, NULL, 22002, WALL0, &o);
    assert_true(o.release);
    assert_int_equal(o.ev, IDLE_EV_FAILED);
    assert_int_equal(v.st, IDLE_PAUSED);
    /* an answer nobody waits for changes nothing */
    idle_answer(&v, true, "running", 22003, WALL0, &o);
    assert_int_equal(v.st, IDLE_PAUSED);
    assert_false(o.changed);
}

static void test_off(void **state)
{
    (void)state;
    idle_init(&v, 0, 1000, WALL0);
    assert_int_equal(idle_deadline(&v), 0);
    idle_tick(&v, UINT64_C(1) << 40, &o);
    assert_int_equal(o.act, IDLE_ACT_NONE);
    assert_false(idle_login(&v, 5, &o));
}

static void test_describe(void **state)
{
    (void)state;
    char buf[96];
    struct idle_view w;
    idle_view_of(&v, &w);
    assert_string_equal(idle_describe(&w, buf, sizeof buf), "unknown");
    pause_at(3000);
    idle_view_of(&v, &w);
    assert_string_equal(idle_describe(&w, buf, sizeof buf),
                        "paused by vmgate (idle since 2026-12-07T06:20:00Z)");
    idle_login(&v, 4000, &o);
    idle_view_of(&v, &w);
    assert_string_equal(idle_describe(&w, buf, sizeof buf),
                        "resuming (paused by vmgate, idle since 2026-12-07T06:20:00Z)");
    idle_answer(&v, true, "paused", 4001, WALL0, &o);
    idle_answer(&v, true, NULL, 4002, WALL0, &o);
    idle_view_of(&v, &w);
    assert_string_equal(idle_describe(&w, buf, sizeof buf), "running");
    idle_tick(&v, 4002 + IDLE, &o);
    idle_view_of(&v, &w);
    assert_string_equal(idle_describe(&w, buf, sizeof buf),
                        "pausing (idle since 2026-12-07T06:20:00Z)");
    /* truncation is safe */
    char small[8];
    idle_describe(&w, small, sizeof small);
    assert_int_equal(strlen(small), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_idle_from_start, setup),
        cmocka_unit_test_setup(test_sessions_hold_the_timer, setup),
        cmocka_unit_test_setup(test_login_restarts_idle_time, setup),
        cmocka_unit_test_setup(test_wake_on_login, setup),
        cmocka_unit_test_setup(test_no_stop_unless_running, setup),
        cmocka_unit_test_setup(test_no_cont_unless_paused, setup),
        cmocka_unit_test_setup(test_forget, setup),
        cmocka_unit_test_setup(test_login_while_checking, setup),
        cmocka_unit_test_setup(test_login_while_stopping, setup),
        cmocka_unit_test_setup(test_session_during_check, setup),
        cmocka_unit_test_setup(test_failures, setup),
        cmocka_unit_test_setup(test_off, setup),
        cmocka_unit_test_setup(test_describe, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
