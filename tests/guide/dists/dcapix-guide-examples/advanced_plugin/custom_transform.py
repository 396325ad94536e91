"""Supplied for the guide's ``advanced_plugin``: a transform upper-casing the string fields it names."""

from dc_api_x.ext.transforms import Transform, TransformOptions


class CustomTransformOptions(TransformOptions):
    fields: list[str]


class CustomTransformProvider(Transform):
    name = "custom_transform"
    Options = CustomTransformOptions

    def transform_schema(self, schema):
        self.require_fields(schema, self.options.fields)
        return super().transform_schema(schema)

    def apply_records(self, records):
        out = []
        for record in records:
            record = dict(record)
            for field in self.options.fields:
                if isinstance(record.get(field), str):
                    record[field] = record[field].upper()
            out.append(record)
        return out
