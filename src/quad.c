#include "quad.h"

#include <float.h>

#include <gsl/gsl_errno.h>
#include <gsl/gsl_integration.h>

#include "error.h"

enum { QUAD_LIMIT = 4000 };

struct quad_thunk {
    quad_fn fn;
    void *ctx;
};

static double quad_call(double x, void *p)
{
    const struct quad_thunk *t = p;
    return t->fn(x, t->ctx);
}

bool quad_integrate(quad_fn fn, void *ctx, double lo, double hi, double epsrel, double *result,
                    double *abserr)
{
    ASSERT(lo < hi && epsrel > 0);
    if (epsrel < 50 * DBL_EPSILON)
        epsrel = 50 * DBL_EPSILON;
    struct quad_thunk thunk = {fn, ctx};
    gsl_function f = {quad_call, &thunk};
    gsl_integration_workspace *w = gsl_integration_workspace_alloc(QUAD_LIMIT);
    CHECK(w, "cannot allocate a quadrature workspace of %d intervals", QUAD_LIMIT);
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    double err = 0.0;
    int status = gsl_integration_qag(&f, lo, hi, 0.0, epsrel, QUAD_LIMIT, GSL_INTEG_GAUSS61, w,
                                     result, &err);
    gsl_set_error_handler(old);
    gsl_integration_workspace_free(w);
    if (abserr)
        *abserr = err;
    return status == GSL_SUCCESS;
}
