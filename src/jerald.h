/*
 * jerald (tier: kernels) — Green's-function displacement layers (JERALD, extending Lagrangian Deep
 * Learning) and the dark-matter, stellar-mass and HI maps they paint, exactly as Rigo, Trotta &
 * Viel 2025 (arXiv 2501.09168) define them.
 *
 * One layer (parameters α, γ, kh, kl, ν) on an N^3 mesh of a periodic box of side L, h = L/N:
 *   ρ      = CIC paint of the particles (unit mass) · N^3 / N_part            (⟨ρ⟩ = 1)
 *   φ_k    = s α G(|k|) FFT[(ρ + 1e-8)^γ]_k / N^3,  s = 1e-2, |k| = 0 taken as 1e-8
 *   G(k)   = −exp(−k/kl − kh/k) k^ν             (green dm)
 *            −exp(−k²/kl² − kh²/k²) k^ν         (green sm, the LDL / stellar form)
 *   ∇_i φ  = IFFT[−i D(k_i) φ_k] (unnormalised inverse), D the 6th-order finite-difference kernel
 *            [45 sin(k h) − 9 sin(2 k h) + sin(3 k h)] / (30 h), or the 4th-order one
 *            [8 sin(k h) − sin(2 k h)] / (6 h)
 *   x     ← x + ∇φ(x) read with CIC (the adjoint of the paint), wrapped into [0, L).
 * HI layers (s = 1e-3) add a repulsive stellar term, both with the sm form:
 *   φ_k = 1e-3 [α1 G1(k) FFT[(ρ + 1e-8)^γ1]_k − α2 G2(k) FFT[M*^γ2]_k] / N^3.
 * Final maps, from ρ_out painted after the last layer:
 *   dm       F  = ρ_out
 *   stellar  M* = max(w (ρ_out + 1e-8)^μ + b, 1e-12)
 *   hi       HI = max(w max(ρ_out + z_s, 0)^μ − Dpl + b, 0),
 *            Dpl = max(β1 IFFT[M̂_k (exp(−k/kli − khi/k) k^νi + ξ)] + η, 0) + β2 M̂^γ3,
 *            M̂ = max(M*, 1e-12) / ⟨max(M*, 1e-12)⟩, M̂_k = FFT[M̂]/N^3.
 * In the HI potential M* is the stellar map itself (already floored at 1e-12); the division by
 * the global mean applies to the depletion, as the spec's "M* here" says.
 *
 * Parameters come from the parameter file (jerald.maps.<name>.*, see src/params.c): every map
 * starts from the same input particles and applies its own list of layers. An HI map names the
 * stellar map that feeds it (stellar_map); maps are evaluated with stellar sources first.
 *
 * Execution is a plan: jerald_plan_create makes the FFT plan (shared with the power spectra of
 * the maps), the painter with its ghost planes, three mesh buffers, a fixed-size readout buffer
 * (the gradient is read in chunks of 4M particles by default) and the k-space tables once; layers
 * and maps then run without allocating (particle migration aside). Particles stay on the rank
 * owning their x-slab (paint_plan_decomp); after each displacement the few that crossed a slab face
 * migrate. Mesh ghosts (two planes per field) make painting and the one-pass readout of the three
 * gradient components local, O(1) per particle. Meshes and particles are float32 (lemur's
 * convention); k-space factors, readout sums and reductions are double. Per layer: 1 r2c
 * transform (2 for HI layers) and 3 c2r transforms, one per gradient component.
 *
 * Everything here is in src/: collectives go through src/mpi (fft, paint, migrate, comm).
 */
#ifndef LEMUR_JERALD_H
#define LEMUR_JERALD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"
#include "particles.h"

/** Potential scaling s of dark-matter and stellar layers, and of HI layers. */
#define JERALD_SCALE    1e-2
#define JERALD_SCALE_HI 1e-3
/** Added to ρ before powers; |k| used for the k = 0 mode; floor of the stellar map. */
#define JERALD_RHO_EPS 1e-8
#define JERALD_K_ZERO  1e-8
#define JERALD_FLOOR   1e-12
/** Most maps and layers per map. */
#define JERALD_MAX_MAPS   32
#define JERALD_MAX_LAYERS 64

/** Final transformation of a map. */
enum jerald_model {
    JERALD_MODEL_DM,      /**< F = ρ_out */
    JERALD_MODEL_STELLAR, /**< M* = max(w (ρ_out + 1e-8)^μ + b, 1e-12) */
    JERALD_MODEL_HI,      /**< two-term layers, depletion, final ReLU */
};

/** Green's function form. */
enum jerald_green {
    JERALD_GREEN_DM, /**< −exp(−k/kl − kh/k) k^ν */
    JERALD_GREEN_SM, /**< −exp(−k²/kl² − kh²/k²) k^ν */
};

/** One Green's-function term of a layer. */
struct jerald_term {
    double alpha; /**< amplitude α */
    double gamma; /**< source exponent γ */
    double kh;    /**< high-pass scale [h/Mpc], >= 0 */
    double kl;    /**< low-pass scale [h/Mpc], > 0 */
    double nu;    /**< power-law index ν */
};

/** One displacement layer: the density term and, in HI maps, the repulsive stellar term. */
struct jerald_layer {
    struct jerald_term density;
    struct jerald_term repel;
};

/** Final ReLU parameters (stellar and HI maps; z_s is used by HI maps only). */
struct jerald_final {
    double w, mu, b, z_s;
};

/** HI depletion parameters. */
struct jerald_depletion {
    double beta1, beta2, gamma3, eta;
    double kh, kl, nu, xi; /**< the filter exp(−k/kl − kh/k) k^ν + ξ */
};

/** One map: its model, layers and final parameters. */
struct jerald_map {
    char name[64];
    enum jerald_model model;
    enum jerald_green green; /**< form of the layers' Green's function (HI: always sm) */
    int n_layers;
    struct jerald_layer layer[JERALD_MAX_LAYERS];
    struct jerald_final final;
    struct jerald_depletion depletion;
    char stellar_name[64]; /**< HI: name of its stellar map (stellar_map); "" otherwise */
    int stellar;           /**< HI: index of its stellar map in the set; -1 otherwise */
};

/** Every map of a run, with the evaluation order. */
struct jerald_set {
    int n_mesh;         /**< mesh cells per side (resolved: never 0) */
    int gradient_order; /**< 4 or 6 */
    bool write_particles;
    int n_maps;
    struct jerald_map map[JERALD_MAX_MAPS];
    int order[JERALD_MAX_MAPS]; /**< evaluation order: every stellar source before its HI map */
    bool keep[JERALD_MAX_MAPS]; /**< map i feeds an HI map (its mesh is kept) */
};

/** A named double parameter of a struct, for descriptor-driven reading, checks and output. */
struct jerald_field {
    const char *name;
    size_t offset;
};
/** Fields of struct jerald_term, jerald_final and jerald_depletion (NULL-terminated tables). */
extern const struct jerald_field jerald_term_fields[];
extern const struct jerald_field jerald_final_fields[];
extern const struct jerald_field jerald_depletion_fields[];

/** Names of the enum values as the parameter file spells them ("dm", "stellar", "hi"; "dm",
 *  "sm"). Local. */
const char *jerald_model_name(enum jerald_model m);
const char *jerald_green_name(enum jerald_green g);

/* ---- parameters (jerald_params.c) -------------------------------------------------------- */

/** Read jerald.* from a finalized configuration into s (caller-allocated; large, so allocate it)
 *  and validate it with jerald_set_check. box_n resolves jerald.n_mesh = 0.
 *  @return false with err naming the map, layer and parameter. Local. */
bool jerald_set_read(const struct config *cfg, long box_n, struct jerald_set *s,
                     struct lm_err *err);

/** Check one map: every parameter finite, kl > 0, kh >= 0 (layers and depletion), HI maps with
 *  a stellar source, the repulsive term present exactly in HI layers. Messages name the key,
 *  e.g. "jerald.maps.dm.layers.1.kl = -1: expected kl > 0". Local. */
bool jerald_map_check(const struct jerald_map *m, struct lm_err *err);

/** Check the whole set (each map, mesh size FFT-able, gradient order 4 or 6, stellar references
 *  resolved and of model stellar) and fill order and keep. Local. */
bool jerald_set_check(struct jerald_set *s, struct lm_err *err);

/* ---- local kernels (jerald_kernels.c) ------------------------------------------------------- */

/** G(k) of form g for term t; k = 0 is taken as JERALD_K_ZERO. Local. */
double jerald_green(enum jerald_green g, const struct jerald_term *t, double k);

/** Depletion filter exp(−k/kl − kh/k) k^ν + ξ; k = 0 is taken as JERALD_K_ZERO. Local. */
double jerald_depletion_filter(const struct jerald_depletion *d, double k);

/** Finite-difference derivative kernel D(k) of order 4 or 6 on cells of size h. Local. */
double jerald_gradient_kernel(int order, double k, double h);

/** x^e in float with exact fast paths for e = 1 and e = 1/2. Local. */
float jerald_powf(float x, double e);

/** The stellar map value max(w (ρ + 1e-8)^μ + b, 1e-12). Local. */
float jerald_stellar_value(const struct jerald_final *f, float rho);

/** The HI value max(w max(ρ + z_s, 0)^μ − Dpl + b, 0) with Dpl = max(β1 filtered + η, 0) +
 *  β2 mhat^γ3. Local. */
float jerald_hi_value(const struct jerald_final *f, const struct jerald_depletion *d, float rho,
                      float filtered, float mhat);

#endif
