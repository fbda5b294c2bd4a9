/* The learning-rate schedule (session.h's charrnn_lr_at), char-rnn's. */
#include "testutil.h"

#include "charrnn/session.h"

/* ---- learning-rate schedule -------------------------------------------- */

START_TEST(lr_schedule)
{
    /* char-rnn: after iteration i = e*ipe (epoch e done), if e >= decay_after, lr *= decay. */
    static const double afters[] = {0.0, 1.0, 2.5, 3.0, 10.0};
    const long ipe = 7;
    for (size_t a = 0; a < sizeof afters / sizeof afters[0]; a++) {
        double lr = 2e-3;
        for (long i = 1; i <= 6 * ipe; i++) {
            float got = charrnn_lr_at(2e-3f, 0.5f, afters[a], ipe, i);
            ck_assert_msg(fabs(got - lr) <= 1e-7 * lr, "after %g, i %ld: %g vs %g", afters[a], i,
                          (double)got, lr);
            if (i % ipe == 0 && (double)(i / ipe) >= afters[a])
                lr *= 0.5;
        }
    }
    /* decay 1 (off) is constant */
    ck_assert(charrnn_lr_at(1e-3f, 1.0f, 0.0, 5, 1000) == 1e-3f);
}
END_TEST

int main(void)
{
    RUN_TESTS("schedule", lr_schedule);
}
