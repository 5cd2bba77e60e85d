"""A model that ships its own code, with card 002's calling convention: AutoModel loads it with
`trust_remote_code=True`, and `_, logits = model(**inputs)`.

`config.first_output` picks what the first element is: the [CLS] hidden state ([batch, hidden]),
or label similarity scores shaped like the logits ([batch, labels]), which makes the tuple
ambiguous without the card's rule.
"""

import torch
from transformers import PreTrainedModel, RobertaConfig, RobertaModel


class ToySemEvalModel(PreTrainedModel):
    config_class = RobertaConfig
    base_model_prefix = "roberta"

    def __init__(self, config):
        super().__init__(config)
        self.roberta = RobertaModel(config, add_pooling_layer=False)
        self.classifier = torch.nn.Linear(config.hidden_size, config.num_labels)
        self.label_similarity = torch.nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids, attention_mask=None):
        hidden = self.roberta(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        cls = hidden[:, 0]
        first = cls if self.config.first_output == "hidden" else self.label_similarity(cls)
        return first, self.classifier(cls)
