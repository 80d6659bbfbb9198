"""load_registered_model -> attack_split -> capture_inference -> detect_adversarial, on one MLflow run."""

from zenml import pipeline

from steps.adversarial.attack_split import attack_split
from steps.adversarial.capture_inference import capture_inference
from steps.adversarial.detect_adversarial import detect_adversarial
from steps.registry.load_registered_model import load_registered_model
from trustops.settings import AdversarialSettings


@pipeline(enable_cache=False)
def adversarial_pipeline(settings: AdversarialSettings, tracker: str) -> None:
    def tracked(step):
        return step.with_options(experiment_tracker=tracker)

    model, model_info = tracked(load_registered_model)(model_name=settings.model_name, model_version=settings.model_version)
    clean, adversarial, labels, _ = tracked(attack_split)(model=model, model_info=model_info, settings=settings.attack)
    captured = tracked(capture_inference)(model=model, model_info=model_info, clean_inputs=clean, adversarial_inputs=adversarial)
    tracked(detect_adversarial)(
        model=model, model_info=model_info, captured_steps=captured, clean_inputs=clean, adversarial_inputs=adversarial,
        labels=labels, attack=settings.attack, detect=settings.detect,
    )
