"""Chapter 1's figures: the errors of every hyperplane (Fig. 1), an interactive explorer, the SGD
convergence."""

from __future__ import annotations

from tradeoffs.book.style import METHOD_COLORS
from tradeoffs.chapters.ch01_gaussian_tradeoff import gaussian


def plot_errors_vs_position(ax, model, eps_p: float, lam: float | None = None) -> None:
    """Figure 1 of the two-Gaussians paper: standard and adversarial error of every hyperplane orthogonal to
    e12.

    Marks the standard optimum W*, the robust optimum W~* and, if `lam` is given, W*_lambda.
    """
    import numpy as np

    w = np.linspace(0.0, model.distance, 800)
    ax.plot(w, 100 * gaussian.standard_error(w, model), color=METHOD_COLORS["standard"],
            label="standard error")
    ax.plot(w, 100 * gaussian.robust_error(w, model, eps_p), color=METHOD_COLORS["adversarial"],
            label="adversarial error")
    marks = [(gaussian.standard_optimum(model), "$W^*$", ":"),
             (gaussian.robust_optimum(model, eps_p), r"$\tilde W^*$", "--")]
    if lam is not None:
        marks.append((gaussian.tradeoff_optimum(model, eps_p, lam), rf"$W^*_{{\lambda={lam:g}}}$", "-"))
    for position, label, style in marks:
        ax.axvline(position, color="0.3", linestyle=style, linewidth=1, label=f"{label} = {position:.2f}")
    ax.set(xlabel=r"hyperplane position along $e_{12}$ ($\mu_1$ at 0)", ylabel="error (%)", ylim=(0, 100),
           title=rf"$\sigma_1$ = {model.sigma1:g}, $\sigma_2$ = {model.sigma2:g}, $\epsilon_p$ = {eps_p:g}")
    ax.legend(fontsize=8)


def tradeoff_explorer(distance: float = 28.0, d: int = 784):
    """An ipywidgets explorer of the two-Gaussians paper's model: sigma1, sigma2, the l_inf eps and lambda.

    eps_inf = 0.5 sqrt(d) eps, as in Sec. 4.2. Needs a live kernel (Jupyter, Colab).
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    def draw(sigma1=3.0, sigma2=6.0, eps=0.5, lam=0.25):
        if sigma1 >= sigma2:
            print("The paper's setting needs sigma1 < sigma2.")
            return
        model = gaussian.TwoGaussians(sigma1, sigma2, distance)
        fig, ax = plt.subplots(figsize=(8, 3.8))
        plot_errors_vs_position(ax, model, 0.5 * d**0.5 * eps, lam)
        plt.show()

    slider = dict(continuous_update=False)
    return widgets.interactive(
        draw,
        sigma1=widgets.FloatSlider(value=3.0, min=0.5, max=10, step=0.5, description="σ1", **slider),
        sigma2=widgets.FloatSlider(value=6.0, min=1, max=30, step=0.5, description="σ2", **slider),
        eps=widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="ε (l∞)", **slider),
        lam=widgets.FloatLogSlider(value=0.25, base=10, min=-3, max=2, step=0.1, description="λ", **slider),
    )


def plot_finite_sample(axes, results, targets: dict[str, float], title: str, distance: float) -> None:
    """Hyperplane position and misalignment 1 - cos(u, e12) of SGD-trained classifiers against n.

    `results`: ``finite_sample.TrainedHyperplane`` rows; `targets`: the analytic position per method.
    Each dot is one training set; the line joins the medians. Positions are shown on the segment
    [mu1, mu2] = [0, distance]; a small-n hyperplane outside it is drawn at its edge.
    """
    import numpy as np

    position_ax, angle_ax = axes
    for method, target in targets.items():
        rows = [r for r in results if r.method == method]
        sizes = sorted({r.n for r in rows})
        color = METHOD_COLORS[method]
        on_segment = lambda r: min(max(r.position, 0.0), distance)  # noqa: E731
        for ax, value in ((position_ax, on_segment), (angle_ax, lambda r: 1 - r.cosine)):
            ax.scatter([r.n for r in rows], [value(r) for r in rows], color=color, s=12, alpha=0.5,
                       clip_on=False)
            ax.plot(sizes, [np.median([value(r) for r in rows if r.n == n]) for n in sizes], color=color,
                    label=method)
        position_ax.axhline(target, color=color, linestyle="--", linewidth=1)
    position_ax.set(xscale="log", xlabel="training samples n", ylabel="hyperplane position", title=title,
                    ylim=(0, distance))
    angle_ax.set(xscale="log", yscale="log", xlabel="training samples n", ylabel=r"$1 - \cos(u, e_{12})$")
    position_ax.legend(fontsize=8)
