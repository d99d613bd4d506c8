/* params — the schema of every lemur parameter, and its copy into struct params. */
#include "params.h"

#include "alloc.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define AT(field) offsetof(struct params, field)
#define NONE      CONFIG_NO_FIELD

/* clang-format off */
const struct config_key params_schema[] = {
    /* box */
    {"box.size", CONFIG_REAL, "250", "(0, inf)", "side of the periodic box [Mpc/h]", AT(box.size)},
    {"box.n", CONFIG_INT, "128", "[2, 65536]", "Lagrangian grid cells (particles) per side", AT(box.n)},
    /* cosmology */
    {"cosmology.Omega_m", CONFIG_REAL, "0.3175", "(0, 1]", "matter density today (flat LCDM)", AT(cosmology.Omega_m)},
    {"cosmology.Omega_b", CONFIG_REAL, "0.049", "[0, 1)", "baryon density today", AT(cosmology.Omega_b)},
    {"cosmology.h", CONFIG_REAL, "0.6711", "(0, 2]", "H0 / (100 km/s/Mpc)", AT(cosmology.h)},
    {"cosmology.n_s", CONFIG_REAL, "0.9624", "(0, 2)", "primordial spectral index", AT(cosmology.n_s)},
    {"cosmology.sigma8", CONFIG_REAL, "0.834", "(0, 5)", "rms linear density in 8 Mpc/h spheres at z = 0", AT(cosmology.sigma8)},
    {"cosmology.T_cmb", CONFIG_REAL, "2.7255", "(0, 10)", "CMB temperature [K] (Eisenstein & Hu)", AT(cosmology.T_cmb)},
    {"cosmology.power_table", CONFIG_STRING, "", NULL, "CLASS/CAMB table (k [h/Mpc], P or T); empty: Eisenstein & Hu 1998", AT(cosmology.power_table)},
    {"cosmology.power_table_kind", CONFIG_STRING, "pk", "pk|transfer", "what the table's second column holds", AT(cosmology.power_table_kind)},
    {"cosmology.power_table_column", CONFIG_INT, "2", "[2, 64]", "1-based column of P or T in the table (CAMB transfer files: 7 = total matter)", AT(cosmology.power_table_column)},
    {"cosmology.wiggles", CONFIG_BOOL, "true", NULL, "Eisenstein & Hu with BAO wiggles (false: no-wiggle form)", AT(cosmology.wiggles)},
    {"cosmology.normalise", CONFIG_BOOL, "true", NULL, "rescale the spectrum to sigma8 (tables of P(k) may be taken as they are)", AT(cosmology.normalise)},
    /* ic */
    {"ic.seed", CONFIG_INT, "42", "[1, 2147483647]", "master seed of the N-GenIC-compatible white noise", AT(ic.seed)},
    {"ic.amplitude", CONFIG_STRING, "rayleigh", "rayleigh|fixed", "mode amplitudes: Gaussian field or fixed |w_k| = 1", AT(ic.amplitude)},
    {"ic.paired", CONFIG_BOOL, "false", NULL, "add pi to every phase (paired simulations)", AT(ic.paired)},
    {"ic.lpt_order", CONFIG_INT, "1", "[1, 2]", "1: Zel'dovich, 2: 2LPT (particles of the non-emulated baseline)", AT(ic.lpt_order)},
    {"ic.redshift", CONFIG_REAL, "0", "[0, 1000)", "redshift of the IC particle snapshot (the emulator's input field is always z = 0)", AT(ic.redshift)},
    {"ic.write_field", CONFIG_BOOL, "true", NULL, "write the linear displacement field (the emulator's input; lemur run hands it on in memory)", AT(ic.write_field)},
    {"ic.write_particles", CONFIG_BOOL, "false", NULL, "also write the LPT particles as a snapshot (lemur run hands them on in memory)", AT(ic.write_particles)},
    {"ic.input", CONFIG_STRING, "", NULL, "read this HDF5 displacement field instead of generating one", AT(ic.input)},
    /* emulator */
    {"emulator.model", CONFIG_STRING, "", NULL, "converted model file (tools/convert-weights); empty: stage skipped", AT(emulator.model)},
    {"emulator.tile", CONFIG_INT, "0", "[0, 4096]", "output tile side in cells, a multiple of 8; 0: chosen from memory", AT(emulator.tile)},
    {"emulator.velocities", CONFIG_BOOL, "true", NULL, "velocities from the exact derivative in D(z)", AT(emulator.velocities)},
    {"emulator.backend", CONFIG_STRING, "auto", "cpu|gpu|auto", "where the network runs (auto: GPU when present)", AT(emulator.backend)},
    {"emulator.precision", CONFIG_STRING, "fp32", "fp32|bf16|fp16", "GPU storage precision (accumulation is fp32)", AT(emulator.precision)},
    {"emulator.redshifts", CONFIG_REAL_LIST, "[0]", "[0, 1000)", "output redshifts, one particle set each", AT(emulator.redshifts)},
    {"emulator.allow_extrapolation", CONFIG_BOOL, "true", NULL, "warn (true) or stop (false) outside the training range", AT(emulator.allow_extrapolation)},
    {"emulator.threads", CONFIG_INT, "0", "[0, 4096]", "CPU threads per rank for the CPU backend; 0: OpenMP default", AT(emulator.threads)},
    {"emulator.output_fields", CONFIG_BOOL, "false", NULL, "also write the nonlinear displacement and velocity fields (HDF5, one file per redshift)", AT(emulator.output_fields)},
    {"emulator.memory_limit", CONFIG_REAL, "0", "[0, inf)", "GiB per rank for the tile buffers, NN plan and workspace; 0: the node's available memory shared by its ranks", AT(emulator.memory_limit)},
    /* particles */
    {"particles.write_snapshot", CONFIG_BOOL, "true", NULL, "write the emulated particles as a Gadget-4-style snapshot", AT(particles.write_snapshot)},
    {"particles.n_files", CONFIG_INT, "1", "[1, 65536]", "files per snapshot (NumFilesPerSnapshot)", AT(particles.n_files)},
    /* power */
    {"power.input", CONFIG_STRING, "", NULL, "snapshot to measure (lemur power); empty: the run's particles", AT(power.input)},
    {"power.reference", CONFIG_STRING, "", NULL, "reference snapshot B for lemur compare", AT(power.reference)},
    {"power.n_mesh", CONFIG_INT, "0", "[0, 65536]", "mesh cells per side; 0: box.n", AT(power.n_mesh)},
    {"power.dk", CONFIG_REAL, "0", "[0, inf)", "bin width [h/Mpc]; 0: the fundamental 2 pi / L", AT(power.dk)},
    {"power.kmin", CONFIG_REAL, "0", "[0, inf)", "lower edge of the first bin [h/Mpc]", AT(power.kmin)},
    {"power.kmax", CONFIG_REAL, "0", "[0, inf)", "upper limit [h/Mpc]; 0: the Nyquist frequency", AT(power.kmax)},
    {"power.compensate", CONFIG_BOOL, "true", NULL, "divide by the CIC window", AT(power.compensate)},
    {"power.interlace", CONFIG_BOOL, "false", NULL, "interlaced painting (second mesh shifted by h/2)", AT(power.interlace)},
    {"power.subtract_shotnoise", CONFIG_BOOL, "false", NULL, "subtract V/N_part from auto spectra", AT(power.subtract_shotnoise)},
    {"power.multipoles", CONFIG_BOOL, "true", NULL, "redshift-space multipoles l = 0, 2, 4", AT(power.multipoles)},
    {"power.momentum", CONFIG_BOOL, "true", NULL, "momentum power spectrum", AT(power.momentum)},
    {"power.los", CONFIG_STRING, "z", "x|y|z", "line of sight for redshift space", AT(power.los)},
    /* jerald */
    {"jerald.input", CONFIG_STRING, "", NULL, "snapshot to paint (lemur jerald); empty: the run's particles", AT(jerald.input)},
    {"jerald.n_mesh", CONFIG_INT, "0", "[0, 65536]", "mesh cells per side; 0: box.n", AT(jerald.n_mesh)},
    {"jerald.gradient_order", CONFIG_INT, "6", "[4, 6]", "finite-difference gradient order: 4 or 6", AT(jerald.gradient_order)},
    {"jerald.write_particles", CONFIG_BOOL, "false", NULL, "also write each map's displaced particles (jerald_<map>_particles.hdf5)", NONE},
    {"jerald.maps.*.model", CONFIG_STRING, "dm", "dm|stellar|hi", "final map: dm 1+delta, stellar max(w (rho+1e-8)^mu + b, 1e-12), hi (needs stellar_map, final, depletion)", NONE},
    {"jerald.maps.*.green", CONFIG_STRING, "auto", "auto|dm|sm", "Green's function of the layers: dm -exp(-k/kl - kh/k) k^nu, sm -exp(-k^2/kl^2 - kh^2/k^2) k^nu; auto: dm for dm maps, sm otherwise (hi: always sm)", NONE},
    {"jerald.maps.*.stellar_map", CONFIG_STRING, "", NULL, "hi maps: the stellar map (model stellar) feeding the potential and the depletion", NONE},
    {"jerald.maps.*.layers.#.alpha", CONFIG_REAL, NULL, NULL, "layer amplitude alpha (potential scaled by 1e-2; hi layers 1e-3)", NONE},
    {"jerald.maps.*.layers.#.gamma", CONFIG_REAL, "0.5", NULL, "source exponent gamma: (rho + 1e-8)^gamma", NONE},
    {"jerald.maps.*.layers.#.kh", CONFIG_REAL, "1", "[0, inf)", "high-pass scale kh of G(k) [h/Mpc]", NONE},
    {"jerald.maps.*.layers.#.kl", CONFIG_REAL, "8", "(0, inf)", "low-pass scale kl of G(k) [h/Mpc]", NONE},
    {"jerald.maps.*.layers.#.nu", CONFIG_REAL, "0", NULL, "power-law index nu of G(k)", NONE},
    {"jerald.maps.*.layers.#.repel.alpha", CONFIG_REAL, NULL, NULL, "hi layers: amplitude alpha2 of the repulsive stellar term", NONE},
    {"jerald.maps.*.layers.#.repel.gamma", CONFIG_REAL, "0.5", NULL, "hi layers: exponent gamma2 of the stellar source M*^gamma2", NONE},
    {"jerald.maps.*.layers.#.repel.kh", CONFIG_REAL, "1", "[0, inf)", "hi layers: kh of the stellar term's G(k) (sm form) [h/Mpc]", NONE},
    {"jerald.maps.*.layers.#.repel.kl", CONFIG_REAL, "8", "(0, inf)", "hi layers: kl of the stellar term's G(k) (sm form) [h/Mpc]", NONE},
    {"jerald.maps.*.layers.#.repel.nu", CONFIG_REAL, "0", NULL, "hi layers: nu of the stellar term's G(k)", NONE},
    {"jerald.maps.*.final.w", CONFIG_REAL, NULL, NULL, "stellar and hi maps: weight w of the final ReLU", NONE},
    {"jerald.maps.*.final.mu", CONFIG_REAL, NULL, NULL, "stellar and hi maps: exponent mu of the final ReLU", NONE},
    {"jerald.maps.*.final.b", CONFIG_REAL, NULL, NULL, "stellar and hi maps: bias b of the final ReLU", NONE},
    {"jerald.maps.*.final.z_s", CONFIG_REAL, "0", NULL, "hi maps: shift z_s in ReLU(rho + z_s)^mu", NONE},
    {"jerald.maps.*.depletion.beta1", CONFIG_REAL, NULL, NULL, "hi maps: weight beta1 of the filtered stellar map", NONE},
    {"jerald.maps.*.depletion.beta2", CONFIG_REAL, NULL, NULL, "hi maps: weight beta2 of M*^gamma3", NONE},
    {"jerald.maps.*.depletion.gamma3", CONFIG_REAL, NULL, NULL, "hi maps: exponent gamma3 of the local stellar depletion", NONE},
    {"jerald.maps.*.depletion.eta", CONFIG_REAL, NULL, NULL, "hi maps: offset eta inside the depletion ReLU", NONE},
    {"jerald.maps.*.depletion.kh", CONFIG_REAL, NULL, "[0, inf)", "hi maps: kh of the filter exp(-k/kl - kh/k) k^nu + xi [h/Mpc]", NONE},
    {"jerald.maps.*.depletion.kl", CONFIG_REAL, NULL, "(0, inf)", "hi maps: kl of the depletion filter [h/Mpc]", NONE},
    {"jerald.maps.*.depletion.nu", CONFIG_REAL, NULL, NULL, "hi maps: nu of the depletion filter", NONE},
    {"jerald.maps.*.depletion.xi", CONFIG_REAL, NULL, NULL, "hi maps: constant xi added to the depletion filter", NONE},
    {"jerald.fit.steps", CONFIG_INT, "500", "[0, 1000000]", "lemur jerald-fit: most Adam steps per fitted map", AT(jerald.fit.steps)},
    {"jerald.fit.loss", CONFIG_STRING, "l2", "l1|l2", "lemur jerald-fit: loss (1/N) sum |O_s (F - F_target)|^p of the training region, p = 1 or 2", AT(jerald.fit.loss)},
    {"jerald.fit.smoothing_n", CONFIG_REAL, "0", "[0, 10]", "lemur jerald-fit: n of the smoothing operator O_s(k) = 1 + (k / 1 h/Mpc)^-n in the loss; 0: none", AT(jerald.fit.smoothing_n)},
    {"jerald.fit.lr_start", CONFIG_REAL, "1e-3", "(0, inf)", "lemur jerald-fit: learning rate eta_0 at step 0", AT(jerald.fit.lr_start)},
    {"jerald.fit.lr_end", CONFIG_REAL, "1e-2", "(0, inf)", "lemur jerald-fit: learning rate eta_end approached as (eta_end - eta_0)(2 / (exp(-t / tau) + 1) - 1) + eta_0", AT(jerald.fit.lr_end)},
    {"jerald.fit.lr_tau", CONFIG_REAL, "100", "(0, inf)", "lemur jerald-fit: steps tau of the learning-rate ramp", AT(jerald.fit.lr_tau)},
    {"jerald.fit.patience", CONFIG_INT, "100", "[0, 1000000]", "lemur jerald-fit: stop after this many steps without a lower validation loss (the best parameters are kept); 0: never", AT(jerald.fit.patience)},
    {"jerald.fit.tolerance", CONFIG_REAL, "0", "[0, 1)", "lemur jerald-fit: stop once the training loss is below tolerance x its value at step 0; 0: never", AT(jerald.fit.tolerance)},
    {"jerald.fit.targets.*.file", CONFIG_STRING, NULL, NULL, "lemur jerald-fit: HDF5 file of the target mesh of map * of jerald.maps (shape jerald.n_mesh^3)", NONE},
    {"jerald.fit.targets.*.dataset", CONFIG_STRING, NULL, NULL, "lemur jerald-fit: dataset path of the target mesh in its file (e.g. maps/dm)", NONE},
    {"jerald.fit.targets.*.base", CONFIG_STRING, "", NULL, "lemur jerald-fit: a fitted map whose layers come first, frozen (the stellar map starting from the fitted dark-matter particles)", NONE},
    /* fof */
    {"fof.input", CONFIG_STRING, "", NULL, "snapshot to search for friends-of-friends groups (lemur fof); empty: the run's particles", AT(fof.input)},
    {"fof.linking_length", CONFIG_REAL, "0.2", "(0, 1)", "linking length b in units of the mean interparticle spacing L / N^(1/3)", AT(fof.linking_length)},
    {"fof.min_length", CONFIG_INT, "20", "[1, 2147483647]", "fewest members of a group kept in the catalogue", AT(fof.min_length)},
    {"fof.write_members", CONFIG_BOOL, "false", NULL, "also write the member ParticleIDs (Group/MemberIDs, Group/MemberOffset)", AT(fof.write_members)},
    {"fof.n_files", CONFIG_INT, "1", "[1, 65536]", "files per fof_tab catalogue", AT(fof.n_files)},
    {"fof.dlogm", CONFIG_REAL, "0.1", "(0, 2]", "mass-function bin width in log10 M", AT(fof.dlogm)},
    {"fof.spectra", CONFIG_BOOL, "true", NULL, "halo auto and halo-matter cross spectra and bias b(k) on the power.* mesh", AT(fof.spectra)},
    {"fof.n_slab_cells", CONFIG_INT, "0", "[0, 65536]", "x resolution of the slab decomposition; 0: the particle grid (N^(1/3))", AT(fof.n_slab_cells)},
    /* superres */
    {"superres.model", CONFIG_STRING, "", NULL, "network file of the super-resolution generator (tools/convert-weights --network); empty: the superres stage is skipped", AT(superres.model)},
    {"superres.lr_input", CONFIG_STRING, "", NULL, "LR evolved density: a snapshot painted with CIC on the (box.n / scale)^3 LR grid, or a field file with superres.lr_dataset", AT(superres.lr_input)},
    {"superres.lr_dataset", CONFIG_STRING, "", NULL, "dataset of the LR density in superres.lr_input (a field file); empty: lr_input is a snapshot", AT(superres.lr_dataset)},
    {"superres.hr_input", CONFIG_STRING, "", NULL, "field file holding the HR linear density (delta); empty: the run's (ic) or output.dir/ic_field.hdf5", AT(superres.hr_input)},
    {"superres.tile", CONFIG_INT, "0", "[0, 4096]", "HR output tile side, a multiple of 8; 0: automatic (up to 64)", AT(superres.tile)},
    /* bias (Wu, Munoz & Eisenstein 2023) */
    {"bias.model", CONFIG_STRING, "", NULL, "bias network model file for lemur bias (lemur bias-fit or tools/convert-weights makes one)", AT(bias.model)},
    {"bias.field", CONFIG_STRING, "", NULL, "linear field file (ic_field.hdf5 layout) of the features; empty: the run's field, else output.dir/ic_field.hdf5", AT(bias.field)},
    {"bias.input", CONFIG_STRING, "", NULL, "snapshot of the final particles (with IDs) that carry the weights; empty: the run's particles", AT(bias.input)},
    {"bias.scales", CONFIG_REAL_LIST, "[1, 2.83, 8]", "(0, inf)", "smoothing scales R [Mpc/h] of the features of a fit (lemur bias takes the model's), 1 to 8 of them", AT(bias.scales)},
    {"bias.n_mesh", CONFIG_INT, "0", "[0, 65536]", "cells per side of the halo field and its spectra; 0: box.n", AT(bias.n_mesh)},
    {"bias.assignment", CONFIG_STRING, "ngp", "ngp|cic", "mass assignment of the weighted particles: nearest grid point or cloud in cell", AT(bias.assignment)},
    {"bias.write_sites", CONFIG_BOOL, "false", NULL, "also write the normalised features and f of every Lagrangian site (bias_sites.hdf5)", AT(bias.write_sites)},
    {"bias.fit.catalogue", CONFIG_STRING, "", NULL, "halo catalogue of lemur bias-fit (Gadget-4 fof_tab layout); empty: output.dir/fof_tab.hdf5", AT(bias.fit.catalogue)},
    {"bias.fit.min_mass", CONFIG_REAL, "0", "[0, inf)", "haloes of at least this mass make the target [1e10 Msun/h]", AT(bias.fit.min_mass)},
    {"bias.fit.n_mesh", CONFIG_INT, "0", "[0, 65536]", "cells per side of the training mesh; 0: box.n / 2", AT(bias.fit.n_mesh)},
    {"bias.fit.epochs", CONFIG_INT, "50", "[0, 100000]", "training epochs", AT(bias.fit.epochs)},
    {"bias.fit.lr", CONFIG_REAL, "0.02", "(0, 1]", "Adam learning rate of the first epoch", AT(bias.fit.lr)},
    {"bias.fit.lr_decay", CONFIG_REAL, "0.9", "(0, 1]", "learning rate factor per epoch", AT(bias.fit.lr_decay)},
    {"bias.fit.batch_particles", CONFIG_INT, "100000", "[1, 2147483647]", "sampled particles per batch (about; batches are fixed random sets of cells)", AT(bias.fit.batch_particles)},
    {"bias.fit.subsample", CONFIG_REAL, "0.1", "(0, 1]", "fraction of the particles sampled (fixed); their sums are divided by it", AT(bias.fit.subsample)},
    {"bias.fit.seed", CONFIG_INT, "1", "[1, 2147483647]", "seed of the initial weights, the sampling and the batches", AT(bias.fit.seed)},
    {"bias.fit.output", CONFIG_STRING, "", NULL, "model file written by lemur bias-fit; empty: output.dir/bias_model.hdf5", AT(bias.fit.output)},
    {"bias.fit.init", CONFIG_STRING, "", NULL, "model file whose layers start the fit (same scales); empty: PyTorch's initial law from bias.fit.seed", AT(bias.fit.init)},
    {"bias.fit.write_check", CONFIG_BOOL, "false", NULL, "write the inputs, loss and gradient of batch 0 at the initial weights (bias_fit_check.hdf5; one rank)", AT(bias.fit.write_check)},
    /* output */
    {"output.dir", CONFIG_STRING, "output", NULL, "directory of every output (created if missing)", AT(output.dir)},
    {"output.snapshot_files", CONFIG_INT, "1", "[1, 65536]", "files per IC snapshot", AT(output.snapshot_files)},
    /* run */
    {"run.stages", CONFIG_STRING_LIST, "[ic, emulate, power, jerald]", NULL, "stages of lemur run: stages listed by lemur --help, each once, in that order", AT(run.stages)},
    {"run.resume", CONFIG_BOOL, "false", NULL, "skip stages completed with the same configuration", AT(run.resume)},
    {"run.verbosity", CONFIG_INT, "1", "[0, 2]", "0: warnings, 1: progress, 2: debug with rank tags", AT(run.verbosity)},
};
/* clang-format on */
const int params_n_schema = (int)(sizeof params_schema / sizeof params_schema[0]);

static void fill_list(struct params *p, const struct config_key *k, void *at)
{
    int n = config_list_n(p->cfg, k->path);
    if (k->type == CONFIG_STRING_LIST) {
        struct string_list *l = at;
        l->n = n;
        l->v = lm_malloc("params", (n ? n : 1) * sizeof *l->v);
        for (int i = 0; i < n; i++)
            l->v[i] = config_list_item(p->cfg, k->path, i);
    } else {
        struct real_list *l = at;
        l->n = n;
        l->v = lm_malloc("params", (n ? n : 1) * sizeof *l->v);
        for (int i = 0; i < n; i++)
            config_parse_real(config_list_item(p->cfg, k->path, i), &l->v[i]);
    }
}

static void fill_key(struct params *p, const struct config_key *k)
{
    void *at = (char *)p + k->offset;
    switch (k->type) {
    case CONFIG_BOOL:
        *(bool *)at = config_bool(p->cfg, k->path);
        break;
    case CONFIG_INT:
        *(long *)at = config_int(p->cfg, k->path);
        break;
    case CONFIG_REAL:
        *(double *)at = config_real(p->cfg, k->path);
        break;
    case CONFIG_STRING:
        *(const char **)at = config_string(p->cfg, k->path);
        break;
    default:
        fill_list(p, k, at);
    }
}

void params_fill(struct params *p, struct config *cfg)
{
    memset(p, 0, sizeof *p);
    p->cfg = cfg;
    for (int i = 0; i < params_n_schema; i++)
        if (params_schema[i].offset != CONFIG_NO_FIELD)
            fill_key(p, &params_schema[i]);
    p->effective = config_to_yaml(cfg);
}

void params_free(struct params *p)
{
    if (!p)
        return;
    for (int i = 0; i < params_n_schema; i++) {
        const struct config_key *k = &params_schema[i];
        if (k->offset == CONFIG_NO_FIELD || k->type < CONFIG_INT_LIST)
            continue;
        void *at = (char *)p + k->offset;
        if (k->type == CONFIG_STRING_LIST)
            lm_free(((struct string_list *)at)->v);
        else
            lm_free(((struct real_list *)at)->v);
    }
    lm_free(p->effective);
    config_destroy(&p->cfg);
    memset(p, 0, sizeof *p);
}

bool params_check_box(const struct params *p, const char *key, const char *path, double file_box,
                      struct lm_err *err)
{
    double L = p->box.size;
    if (fabs(file_box - L) <= 1e-6 * L)
        return true;
    char who[PARAMS_PATH_MAX + 64];
    snprintf(who, sizeof who, "%s%s%s", key ? key : "", key ? " = " : "", path);
    return lm_err_set(err,
                      "%s: the file's BoxSize is %g Mpc/h but box.size is %g: set box.size to the "
                      "box of the file",
                      who, file_box, L);
}
