/*
 * fof (tier: kernels) — friends-of-friends groups of one domain (Davis, Efstathiou, Frenk & White
 * 1985).
 *
 * Two particles are friends when their periodic minimum-image distance is below the linking
 * length ℓ; groups are the connected components of the friends graph. The friends test is a pure
 * function of the two float positions, the box side and ℓ (fof_friends), evaluated in double from
 * the exact float differences, so every rank of a distributed search decides every pair the same
 * way whatever its domain.
 *
 * The domain is periodic in y and z; along x it is either the whole periodic box or a window
 * [x_origin, x_origin + x_width) taken modulo the box (a slab with its ghost layers). Particles are
 * sorted into x-y rows of side >= ℓ, each ordered by z and copied into compact 16-byte records;
 * each row is swept against itself and its 4 forward neighbour rows within a z window of ±ℓ (the
 * 3-d neighbourhood of a cell list with the z cells merged). Components are built with a lock-free
 * union-find: the larger of two roots is linked to the smaller with an atomic compare-and-swap (so
 * a root is the smallest index of its tree and parents only decrease), and finds use path halving.
 * Cells are shared among OpenMP threads; the result does not depend on the number of threads.
 *
 * Everything here is Local (no MPI).
 */
#ifndef LEMUR_FOF_H
#define LEMUR_FOF_H

#include <stdbool.h>
#include <stdint.h>

/** The domain of one search. */
struct fof_domain {
    double box;      /**< periodic box side L [Mpc/h] */
    double link;     /**< linking length ℓ [Mpc/h], 0 < ℓ < L/2 */
    double x_origin; /**< lower x edge of the window (ignored when x_width >= box) */
    double x_width;  /**< x extent of the window; >= box: the whole periodic box */
};

/** True when particles a and b (float positions in [0, L)) are friends: the minimum-image
 *  separation, computed in double, is below link. Local. */
static inline bool fof_friends(const float a[3], const float b[3], double box, double link)
{
    /* a coordinate separation of at least ℓ decides alone: r2 >= dx^2 >= ℓ^2 in floating point */
    double r2 = 0, half = 0.5 * box;
    for (int d = 0; d < 3; d++) {
        double dx = (double)a[d] - (double)b[d];
        if (dx > half)
            dx -= box;
        else if (dx < -half)
            dx += box;
        if (dx >= link || dx <= -link)
            return false;
        r2 += dx * dx;
    }
    return r2 < link * link;
}

/** Bytes of workspace fof_link allocates for n particles (peak, beyond root). Local. */
int64_t fof_link_workspace(int64_t n, const struct fof_domain *d);

/** Connected components of the friends graph of the n particles at x[0..2][i] (positions wrapped
 *  into [0, box); every particle must lie inside the domain's x window).
 *  @param x     positions (three arrays of n floats)
 *  @param n     number of particles, at most INT32_MAX - 1
 *  @param d     the domain
 *  @param root  out: n entries, root[i] = the smallest index of i's component
 *  Threaded with OpenMP. Local. The caller owns root. */
void fof_link(const float *const x[3], int64_t n, const struct fof_domain *d, int32_t *root);

/** Group labels: label[i] = the smallest id[j] over the component of i, given root from fof_link.
 *  label may not alias root. Local. */
void fof_labels(int64_t n, const int32_t *root, const uint64_t *id, uint64_t *label);

/** Properties of one group, accumulated in double over its members in the order given. */
struct fof_group {
    int64_t len;       /**< members */
    uint64_t first_id; /**< the group's label: its smallest ID */
    double mass;       /**< len times the particle mass [1e10 Msun/h] */
    double pos[3];     /**< centre of mass [Mpc/h], wrapped into [0, L) */
    double vel[3];     /**< mean peculiar velocity [km/s] */
    double vel_disp;   /**< 1-D velocity dispersion sqrt(Σ|v - <v>|^2 / (3 len)) [km/s] */
    double radius;     /**< rms distance of the members from pos [Mpc/h] */
};

/** Properties of the group whose members are x[.][idx[k]], v[.][idx[k]], k = 0..m-1 (in this
 *  order; the first member is the reference the others are unwrapped around, minimum image).
 *  v may be NULL (velocities 0). Local. */
void fof_group_properties(const float *const x[3], const float *const v[3], const int64_t *idx,
                          int64_t m, uint64_t first_id, double box, double particle_mass,
                          struct fof_group *g);

/** Catalogue order: len descending, then first_id ascending (qsort comparator). Local. */
int fof_group_compare(const void *a, const void *b);

/* ---- mass function (fof_massfn.c) -------------------------------------------------------- */

struct linear_power;

/** A binned halo mass function dn/dlnM with Poisson errors and the Sheth & Tormen 1999 curve. */
struct fof_mass_function {
    int n_bins;
    double dlogm;      /**< bin width in log10 M */
    double volume;     /**< box volume [(Mpc/h)^3] */
    double *log10m;    /**< bin centres log10(M / (1e10 Msun/h)) ... (n_bins each, one block) */
    double *mass;      /**< 10^log10m [1e10 Msun/h] */
    double *mean_mass; /**< mean group mass in the bin (the centre when empty) */
    double *count;     /**< groups per bin */
    double *dndlnm;    /**< count / (V dlogm ln 10) [(h/Mpc)^3] */
    double *error;     /**< sqrt(count) / (V dlogm ln 10) */
    double *st;        /**< Sheth & Tormen dn/dlnM at the bin centre (0 until filled) */
};

/** Bin the masses of n groups: bin i holds lo + i dlogm <= log10 M < lo + (i+1) dlogm, with lo the
 *  multiple of dlogm at or below the smallest mass and the last bin holding the largest. n may be
 *  0 (no bins). Local. Free with fof_mass_function_destroy. */
struct fof_mass_function *fof_mass_function_measure(const struct fof_group *g, int64_t n,
                                                    double volume, double dlogm);

/** Free (NULL-safe); sets *mf = NULL. Local. */
void fof_mass_function_destroy(struct fof_mass_function **mf);

/** Sheth & Tormen 1999 (eq. 6 with A = 0.3222, a = 0.707, p = 0.3, δc = 1.686):
 *  dn/dlnM = (ρ̄/M) ν f(ν) |dlnσ/dlnM|, ν = δc / (D σ(R)), R = (3M / 4πρ̄)^(1/3), with σ(R) the
 *  real-space top-hat rms of lp at z = 0 and D the growth factor at the snapshot's redshift.
 *  @param M        mass [1e10 Msun/h]
 *  @param omega_m  Ω_m (ρ̄ = Ω_m 27.75366 [1e10 Msun/h / (Mpc/h)^3])
 *  @return dn/dlnM [(h/Mpc)^3]. Local. */
double fof_sheth_tormen(const struct linear_power *lp, double omega_m, double growth, double M);

/** Mean matter density Ω_m ρ_crit [1e10 Msun/h per (Mpc/h)^3]. Local. */
double fof_mean_density(double omega_m);

/** The catalogue (complete on rank 0; other ranks hold n_groups = 0 and NULL arrays). */
struct fof_catalogue {
    int64_t n_groups;
    struct fof_group *groups; /**< in catalogue order */
    int64_t n_members;        /**< Σ len (on every rank) */
    uint64_t *member_ids;     /**< members ? n_members IDs, group by group, each sorted : NULL */
    int64_t n_particles;      /**< particles searched (on every rank) */
    int64_t n_ghosts;         /**< ghosts received over all ranks */
    int n_rounds;             /**< label-merging rounds */
};

/** Free the arrays of a catalogue and zero it. Local. */
void fof_catalogue_free(struct fof_catalogue *c);

#endif
