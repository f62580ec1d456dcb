"""grpo-train's config: YAML, flags over it, clear errors naming the field, written beside the run."""

from __future__ import annotations

import pytest
import yaml

pytest.importorskip("torch")

from trainer_client.config import ConfigError, TrainConfig, load_config
from trainer_client.train import main as grpo_train

pytestmark = pytest.mark.trainer


def test_flags_override_the_yaml_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"lr": 1e-4, "steps": 10, "beta": 0.0, "reward_config": {"weights": {"answer": 2}}}))
    config = load_config(["--config", str(path), "--lr", "1e-6", "--synthetic-objects", "[2, 3]",
                          "--service-api-key", "12345", "--reward-config", "{weights: {graph_node: 1.0}}"])
    assert config.lr == 1e-6 and config.steps == 10 and config.beta == 0.0
    assert config.synthetic_objects == (2, 3)
    assert config.service_api_key == "12345"  # text, though it looks like a number
    assert config.reward_config == {"weights": {"graph_node": 1.0}}  # a flag replaces the value whole


@pytest.mark.parametrize(("args", "message"), [
    (["--lr", "fast"], "lr"),
    (["--group-size", "1"], "group_size"),
    (["--advantages", "ppo"], "advantages"),
    (["--prompts-per-step", "3", "--group-size", "4", "--minibatch-size", "5"], "must divide"),
    (["--engine", "vllm"], "saved model directory"),
])
def test_bad_values_are_errors_that_name_the_field(args, message):
    with pytest.raises(ConfigError, match=message):
        load_config(args)


def test_unknown_keys_in_the_file_are_errors(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("lr: 1e-4\nlearning_rate: 1e-5\n")
    with pytest.raises(ConfigError, match="learning_rate"):
        load_config(["--config", str(path)])
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(["--config", str(path)])


def test_the_config_is_written_beside_the_outputs_and_reads_back(tmp_path):
    config = TrainConfig(output_dir=str(tmp_path), lr=3e-5, synthetic_frames=(1, 2))
    path = config.write(tmp_path)
    assert load_config(["--config", str(path)]) == config


def test_grpo_train_exits_2_with_the_reason(capsys):
    assert grpo_train(["--steps", "0"]) == 2
    assert "steps" in capsys.readouterr().err
