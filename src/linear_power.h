/*
 * linear_power (tier: kernels) — the linear matter power spectrum P(k) at z = 0, in (Mpc/h)^3 with
 * k in h/Mpc.
 *
 * A struct linear_power is a plan: linear_power_create does all the work (transfer-function
 * coefficients, reading and checking a table, the σ8 normalisation), linear_power_eval is then a
 * cheap pure function of k (safe to call from OpenMP threads), linear_power_destroy frees it.
 * Sources:
 *   LINEAR_POWER_EH              Eisenstein & Hu 1998 (ApJ 496, 605) transfer function with baryon
 *                                acoustic wiggles (their eqs. 2-24); P = A k^n_s T(k)^2.
 *   LINEAR_POWER_EH_NOWIGGLE     the same paper's smooth "zero-baryon" shape with the α_Γ baryon
 *                                suppression (eqs. 26-31); P = A k^n_s T(k)^2.
 *   LINEAR_POWER_TABLE_POWER     a text table of k [h/Mpc] and P(k) [(Mpc/h)^3] at z = 0 (CLASS
 *                                *_pk.dat, CAMB *_matterpower.dat), rescaled to σ8 or used as is.
 *   LINEAR_POWER_TABLE_TRANSFER  a text table of k [h/Mpc] and T(k) in CAMB's convention (T tends
 *                                to a constant at small k: CAMB *_transfer_*.dat, total matter in
 *                                column 7, or CLASS with format = camb); P = A k^n_s T(k)^2.
 * A and the tables' scale are fixed so that σ8 (top-hat W(x) = 3(sin x − x cos x)/x^3 at
 * R = 8 Mpc/h) equals cosmology.sigma8, except for a power table with normalise = false. The σ8
 * integral runs in ln k over 1e-5 to 1e3 h/Mpc for EH and over the table's own rows for tables,
 * which must then reach k <= 2e-3 and k >= 2 h/Mpc (so that less than 1e-4 of σ8^2 is missed).
 * EH follows the authors' reference code (tf_fit.c) where the paper is ambiguous: eq. 2 gives
 * 1 + z_eq, and R(z) of eq. 5 is taken at 1 + z_d and 1 + z_eq.
 *
 * Tables: one row per line, whitespace-separated numbers; k in column 1, the value in the chosen
 * column. '#' starts a comment (whole line or trailing); blank lines are skipped; non-numeric lines
 * before the first row are taken as a header. k must increase strictly; k and P must be positive;
 * T must be non-zero and of one sign (only T^2 matters). Tables are interpolated linearly in
 * (ln k, ln P) and are valid only on their own k range: callers check the range they need with
 * linear_power_check_range before evaluating. Every problem with a table (missing file, malformed
 * line as file:line, bad values, order, range) is reported through struct lm_err and names the
 * file; the caller agrees on it across ranks.
 */
#ifndef LEMUR_LINEAR_POWER_H
#define LEMUR_LINEAR_POWER_H

#include <stdbool.h>

#include "cosmology.h"
#include "error.h"

/** Where P(k) comes from. */
enum linear_power_source {
    LINEAR_POWER_EH,             /**< Eisenstein & Hu 1998 with BAO wiggles (the default) */
    LINEAR_POWER_EH_NOWIGGLE,    /**< Eisenstein & Hu 1998 no-wiggle shape */
    LINEAR_POWER_TABLE_POWER,    /**< table of k, P(k) */
    LINEAR_POWER_TABLE_TRANSFER, /**< table of k, T(k) (CAMB convention) */
};

/** What linear_power_create needs besides the cosmology. */
struct linear_power_params {
    enum linear_power_source source;
    const char *table; /**< table file (TABLE sources; copied), or only a name for messages with
                            linear_power_create_from_text */
    int column;        /**< 1-based column of P or T (k is column 1); 0 means 2 */
    bool normalise;    /**< TABLE_POWER: rescale to σ8 (true) or take P as is (false); the other
                            sources are always normalised */
};

struct params;
/** The source of the linear P(k) that the keys cosmology.* of a run select: Eisenstein & Hu 1998
 *  with or without wiggles, or cosmology.power_table as a power or transfer table. Local. */
struct linear_power_params linear_power_params_from(const struct params *p);

/** Eisenstein & Hu 1998 coefficients of one cosmology (lengths in Mpc, wavenumbers in 1/Mpc). */
struct linear_power_eh {
    double h, f_b, f_c; /**< h, Ωb/Ωm, Ωc/Ωm */
    double theta;       /**< T_cmb / 2.7 K */
    double k_eq;        /**< wavenumber of matter-radiation equality (eq. 3) */
    double s;           /**< sound horizon at the drag epoch (eq. 6) */
    double k_silk;      /**< Silk damping scale (eq. 7) */
    double alpha_c;     /**< CDM suppression (eq. 11) */
    double beta_c;      /**< CDM log shift (eq. 12) */
    double alpha_b;     /**< baryon envelope amplitude (eq. 14) */
    double beta_b;      /**< baryon envelope shift (eq. 24) */
    double beta_node;   /**< node shift (eq. 23) */
    double alpha_gamma; /**< no-wiggle shape suppression (eq. 31) */
    double s_fit;       /**< no-wiggle sound-horizon fit (eq. 26) */
    double omega_m_h;   /**< Ωm h (the shape parameter Γ without baryons) */
};

/** Rows of a k-table, ready for log-log interpolation. */
struct linear_power_table {
    int n_rows;
    double *ln_k; /**< ln k [h/Mpc], strictly increasing (lm_malloc, label "linear_power.table") */
    double *ln_v; /**< ln |P| or ln |T| (same block as ln_k) */
    char *name;   /**< the file name, for messages (lm_malloc) */
};

/** The linear power spectrum plan. Fields are read-only for users. */
struct linear_power {
    struct cosmology cosmo;
    enum linear_power_source source;
    double amplitude;                /**< A in P = A k^n_s T^2, or the factor on a power table */
    double sigma8;                   /**< σ8 of the spectrum as evaluated */
    struct linear_power_eh eh;       /**< EH coefficients (EH sources) */
    struct linear_power_table table; /**< the rows (TABLE sources; n_rows = 0 otherwise) */
    double k_min, k_max;             /**< where eval is valid [h/Mpc]; 0 and HUGE_VAL for EH */
};

/** Create the plan: read and check the table (TABLE sources) and normalise to c->sigma8.
 *  @param c    in: cosmology (copied; should pass cosmo_check)
 *  @param p    in: source and table options (p->table is copied)
 *  @param err  out: why creation failed (message names the file and line where relevant)
 *  @return the plan (free with linear_power_destroy), or NULL with err set. Local. */
struct linear_power *linear_power_create(const struct cosmology *c,
                                         const struct linear_power_params *p, struct lm_err *err);

/** As linear_power_create for a TABLE source whose file content is already in memory (e.g. read
 *  on one rank and broadcast); p->table is only used as the name in messages.
 *  @param text in: the whole table text, NUL-terminated (not kept). Local. */
struct linear_power *linear_power_create_from_text(const struct cosmology *c,
                                                   const struct linear_power_params *p,
                                                   const char *text, struct lm_err *err);

/** Free the plan and everything it owns; NULL-safe; sets *lp = NULL. Local. */
void linear_power_destroy(struct linear_power **lp);

/** P(k) at z = 0 in (Mpc/h)^3, k in h/Mpc. Returns 0 for k <= 0 (the mean mode). For a table, k
 *  must lie in [k_min, k_max] (checked beforehand with linear_power_check_range; outside it the
 *  end segment's power law is extended). Local, thread-safe. */
double linear_power_eval(const struct linear_power *lp, double k);

/** Check that [kmin, kmax] (h/Mpc) lies inside the range where lp is valid (a relative slack of
 *  1e-9 absorbs rounding). Always true for the EH sources.
 *  @param err out: names the table file, its range and the range needed
 *  @return true when covered. Local. */
bool linear_power_check_range(const struct linear_power *lp, double kmin, double kmax,
                              struct lm_err *err);

/** σ(R): rms linear density contrast in top-hat spheres of radius R [Mpc/h] at z = 0, integrated
 *  in ln k over the source's range (EH: 1e-5 to 1e3 h/Mpc). Local. */
double linear_power_sigma(const struct linear_power *lp, double R);

/** Top-hat window W(x) = 3(sin x − x cos x)/x^3 (series for small x). Local. */
double linear_power_window_tophat(double x);

/** Fill e with the Eisenstein & Hu 1998 coefficients of c. Local. */
void linear_power_eh_setup(struct linear_power_eh *e, const struct cosmology *c);

/** EH98 transfer function with BAO wiggles at k [h/Mpc] (T -> 1 as k -> 0). Local. */
double linear_power_eh_transfer(const struct linear_power_eh *e, double k);

/** EH98 no-wiggle transfer function at k [h/Mpc] (T -> 1 as k -> 0). Local. */
double linear_power_eh_nowiggle(const struct linear_power_eh *e, double k);

/** Parse a source name ("eh", "eh_nowiggle", "table_power", "table_transfer") into *out.
 *  @return false for an unknown name. Local. */
bool linear_power_source_parse(const char *name, enum linear_power_source *out);

/** The name of a source (as accepted by linear_power_source_parse). Local. */
const char *linear_power_source_name(enum linear_power_source source);

/** Parse the text of a k-table (format in the overview) into t.
 *  @param t         out: the rows (free with linear_power_table_free)
 *  @param text      in: the whole file content, NUL-terminated (not kept)
 *  @param name      in: file name for messages (copied)
 *  @param column    in: 1-based column of the value (>= 2)
 *  @param transfer  in: values are T(k) (non-zero, one sign) rather than P(k) (positive)
 *  @param err       out: "name:line: ..." for a malformed line or bad value, "name: ..." otherwise
 *  @return true on success; on failure t holds nothing. Local. */
bool linear_power_table_parse(struct linear_power_table *t, const char *text, const char *name,
                              int column, bool transfer, struct lm_err *err);

/** Read a file and parse it with linear_power_table_parse (missing or unreadable files are errors
 *  naming the path). Local. */
bool linear_power_table_read(struct linear_power_table *t, const char *path, int column,
                             bool transfer, struct lm_err *err);

/** ln v at ln k by linear interpolation in the table (the end segments extended beyond it). Local,
 *  thread-safe. */
double linear_power_table_interp(const struct linear_power_table *t, double ln_k);

/** Free what t owns and zero it; safe on a zeroed or already freed table. Local. */
void linear_power_table_free(struct linear_power_table *t);

#endif
